// Talking to drain-init's probe endpoint: plain HTTP requests on 127.0.0.1, one connection each.
import { request } from 'node:http';
import { freePort } from './redis.ts';
import { startDrainInit, waitFor, type Run, type RunOptions } from './pid1.ts';

export interface ProbeAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** One request on a new connection; rejects when the connection fails or gets no answer within 5 s. */
export function probeRequest(port: number, path: string, method = 'GET'): Promise<ProbeAnswer> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port, path, method, agent: false, timeout: 5_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', reject);
    });
    outgoing.on('timeout', () => outgoing.destroy(new Error(`no answer to ${method} ${path} within 5 s`)));
    outgoing.on('error', reject);
    outgoing.end();
  });
}

export async function probeStatus(port: number): Promise<Record<string, unknown>> {
  return JSON.parse((await probeRequest(port, '/status')).body) as Record<string, unknown>;
}

/** Polls `path` until `accept` takes its answer. */
export async function waitForProbe(
  port: number,
  path: string,
  accept: (answer: ProbeAnswer) => boolean,
  what: string,
  timeoutMs = 10_000,
): Promise<ProbeAnswer> {
  const deadline = Date.now() + timeoutMs;
  let last: ProbeAnswer | string = 'no answer yet';
  for (;;) {
    try {
      const answer = await probeRequest(port, path);
      if (accept(answer)) return answer;
      last = answer;
    } catch (error) {
      last = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** drain-init as PID 1 with its probe endpoint on a free loopback port, once the endpoint answers. */
export async function startWithProbe(
  args: readonly string[],
  options: RunOptions = {},
): Promise<{ run: Run; port: number }> {
  const port = await freePort();
  const run = startDrainInit(['--probe-host', '127.0.0.1', '--probe-port', String(port), ...args], options);
  await waitFor(() => run.stderr().includes('"probe endpoint listening"') || undefined, 'the probe endpoint');
  return { run, port };
}
