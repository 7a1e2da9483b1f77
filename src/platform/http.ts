// One bounded GET of a JSON document, for the platform's own APIs: node:http or node:https (loaded only
// when asked for), a total time limit on the injected clock, and at most 1 MiB of body.
import type { IncomingMessage } from 'node:http';
import { within, type Clock } from '../lib/clock.js';

const MAX_BODY_BYTES = 1024 * 1024;

export interface JsonRequest {
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string>>;
  /** PEM of the CA that signs the server's certificate (https only). */
  readonly ca?: string;
  readonly timeoutMs: number;
}

/** The answer, or why there is none: one line for a warning. */
export type JsonAnswer = { ok: true; body: unknown } | { ok: false; reason: string };

/** GETs a JSON document; never rejects. A status other than 200, a timeout or a body that is not JSON is a reason. */
export function getJson(request: JsonRequest, clock: Clock): Promise<JsonAnswer> {
  let abort: () => void = () => {};
  const answer = new Promise<JsonAnswer>((resolve) => {
    const https = request.url.protocol === 'https:';
    const { request: send } = process.getBuiltinModule(https ? 'node:https' : 'node:http');
    const outgoing = send(
      request.url,
      {
        method: 'GET',
        headers: { Accept: 'application/json', ...request.headers },
        ...(https ? { ca: request.ca } : {}),
      },
      (response) => void readBody(response).then(resolve),
    );
    outgoing.on('error', (error) => resolve({ ok: false, reason: error.message }));
    outgoing.end();
    abort = () => outgoing.destroy();
  });
  const timeout: JsonAnswer = { ok: false, reason: `no answer within ${request.timeoutMs} ms` };
  return within(clock, answer, request.timeoutMs, timeout).finally(() => abort());
}

async function readBody(response: IncomingMessage): Promise<JsonAnswer> {
  let text = '';
  response.setEncoding('utf8');
  try {
    for await (const chunk of response) {
      text += String(chunk);
      if (text.length > MAX_BODY_BYTES) return { ok: false, reason: 'the answer is longer than 1 MiB' };
    }
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
  const status = response.statusCode ?? 0;
  if (status !== 200) return { ok: false, reason: `HTTP ${status} ${firstLine(text)}`.trim() };
  try {
    return { ok: true, body: JSON.parse(text) as unknown };
  } catch {
    return { ok: false, reason: 'the answer is not JSON' };
  }
}

/** The message of a Kubernetes Status document, else the first line of the body, at most 200 characters. */
function firstLine(text: string): string {
  try {
    const status = JSON.parse(text) as { message?: unknown };
    if (typeof status.message === 'string') return status.message.slice(0, 200);
  } catch {
    // not JSON: the text itself
  }
  return (text.split('\n', 1)[0] ?? '').slice(0, 200);
}
