// Which request gets which answer, without I/O: the server feeds it requests and snapshots.
import { EXPOSITION_CONTENT_TYPE, renderExposition } from './exposition.js';
import { drainInitFamilies, sidekiqFamilies } from './metrics.js';
import type { SidekiqStats } from '../sidekiq/stats.js';
import { liveness, readiness, statusDocument, type ProbeSnapshot, type Verdict } from './state.js';

/** `alive`: sidekiq_alive's path, answered as sidekiq_alive does, with the meaning of /livez. */
export type Endpoint = 'livez' | 'readyz' | 'status' | 'metrics' | 'alive';

const ENDPOINTS: ReadonlyMap<string, Endpoint> = new Map([
  ['/livez', 'livez'],
  ['/readyz', 'readyz'],
  ['/status', 'status'],
  ['/metrics', 'metrics'],
]);

/** The paths drain-init serves itself, which sidekiq_alive's path must not take. */
export const OWN_PATHS: readonly string[] = [...ENDPOINTS.keys()];
const ALLOWED_METHODS = 'GET, HEAD';
const TEXT = 'text/plain; charset=utf-8';

export interface ProbeRequest {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface ProbeResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** An endpoint to answer, or the refusal of the request; `alivePath` is where sidekiq_alive answered. */
export function route(request: ProbeRequest, alivePath: string): { endpoint: Endpoint } | { refusal: ProbeResponse } {
  const path = (request.url ?? '').split('?', 1)[0] ?? '';
  const endpoint = ENDPOINTS.get(path) ?? (path === alivePath ? 'alive' : undefined);
  // A body is read only to be dropped (see the server's bodyDropped), and the connection closed after the answer.
  const close = hasBody(request.headers) ? { Connection: 'close' } : {};
  if (endpoint === undefined)
    return {
      refusal: text(
        404,
        `not found: drain-init serves /livez, /readyz, /status, /metrics and ${alivePath} (sidekiq_alive's)`,
        close,
      ),
    };
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    return {
      refusal: text(405, `method ${request.method ?? ''} not allowed: use GET or HEAD`, {
        ...close,
        Allow: ALLOWED_METHODS,
      }),
    };
  }
  if (hasBody(request.headers)) return { refusal: text(413, 'request bodies are refused', close) };
  return { endpoint };
}

/** Every request with a body is refused: the endpoints take none. */
export function hasBody(headers: ProbeRequest['headers']): boolean {
  const length = headers['content-length'];
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

export interface AnswerInputs {
  readonly snapshot: ProbeSnapshot;
  readonly maxBeatAgeMs: number;
  /** /metrics only: undefined when there are no Sidekiq figures. */
  readonly stats?: SidekiqStats | undefined;
  /** /metrics only: the fleet's platform stops that ran out of time; undefined when Redis did not say. */
  readonly stopsCut?: number | undefined;
}

export function answer(endpoint: Endpoint, inputs: AnswerInputs): ProbeResponse {
  switch (endpoint) {
    case 'livez':
      return verdictResponse(liveness(inputs.snapshot, inputs.maxBeatAgeMs));
    case 'alive': {
      // sidekiq_alive's own answers: 200 "Alive!", else 404 "Can't find the alive key".
      const verdict = liveness(inputs.snapshot, inputs.maxBeatAgeMs);
      return verdict.ok ? text(200, 'Alive!') : text(404, `Can't find the alive key: ${verdict.reason}`);
    }
    case 'readyz':
      return verdictResponse(readiness(inputs.snapshot));
    case 'status':
      return {
        status: 200,
        headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' },
        body: `${JSON.stringify(statusDocument(inputs.snapshot))}\n`,
      };
    case 'metrics': {
      const families = [
        ...drainInitFamilies(inputs.snapshot, inputs.stopsCut),
        ...(inputs.stats === undefined ? [] : sidekiqFamilies(inputs.stats)),
      ];
      return {
        status: 200,
        headers: { 'Content-Type': EXPOSITION_CONTENT_TYPE, 'Cache-Control': 'no-store' },
        body: renderExposition(families),
      };
    }
  }
}

function verdictResponse(verdict: Verdict): ProbeResponse {
  return text(verdict.ok ? 200 : 503, verdict.reason);
}

function text(status: number, line: string, headers: Readonly<Record<string, string>> = {}): ProbeResponse {
  return { status, headers: { 'Content-Type': TEXT, 'Cache-Control': 'no-store', ...headers }, body: `${line}\n` };
}
