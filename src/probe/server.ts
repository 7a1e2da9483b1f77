// The probe endpoint's HTTP server: node:http with tight limits, so no client can hold it, fill
// drain-init's memory or flood its log, and nothing it does can hold up a signal or the stop.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Config } from '../config/parse.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { ThrottledWarnings } from '../log/throttle.js';
import type { SidekiqStats } from '../sidekiq/stats.js';
import type { WorkerView } from '../sidekiq/view.js';
import type { StopPhase } from '../stop/sequence.js';
import { describePlan, type StopPlan } from '../stop/timeline.js';
import { answer, route, type ProbeResponse } from './routes.js';
import type { ProbeSnapshot } from './state.js';

export type ProbeConfig = Pick<Config, 'probePort' | 'probeHost' | 'maxBeatAgeMs'>;

/** Kubelets and Prometheus need a few; the rest are refused at once. */
export const MAX_CONNECTIONS = 64;
/** A client has this long to send its request headers, and a connection with no request is closed. */
export const HEADERS_TIMEOUT_MS = 2_000;
const REQUEST_TIMEOUT_MS = 5_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;
/** A socket with no traffic either way, a client not reading its answer too, is closed after this. */
const IDLE_SOCKET_TIMEOUT_MS = 10_000;
/** How often the timeouts above are checked (Node's default is 30 s). */
const TIMEOUT_CHECK_INTERVAL_MS = 500;
const MAX_HEADER_BYTES = 8_192;
const MAX_REQUESTS_PER_SOCKET = 1_000;
const WARNING_INTERVAL_MS = 60_000;

/** Everything the probe reports, read at each request. */
export interface ProbeSources {
  /** The stop sequence: its phase, and its plan and deadline (on the monotonic clock) once a stop has begun. */
  readonly stop: {
    readonly phase: StopPhase;
    readonly plan: StopPlan | undefined;
    readonly deadline: number | undefined;
  };
  readonly forwarder: { readonly forwardedCounts: ReadonlyMap<string, number> };
  /** The running worker; undefined between its exit and its restart, and once it has exited for good. */
  readonly childPid: () => number | undefined;
  /** The worker has exited and will be restarted. */
  readonly restartPending: () => boolean;
  readonly zombiesReaped: () => number;
  readonly restarts: () => number;
  readonly jobsRecovered: () => number;
  /** Undefined without a Redis URL. */
  readonly redis: (() => { readonly connected: boolean; readonly heartbeatFailures: number }) | undefined;
  /** Sidekiq's view of the worker; undefined unless it is stopped as a Sidekiq watched through Redis. */
  readonly sidekiq: () => WorkerView | undefined;
  /** Sidekiq's fleet-wide figures for /metrics; undefined when there are none to give. Never rejects. */
  readonly sidekiqStats: () => Promise<SidekiqStats | undefined> | undefined;
  readonly clock: Clock;
}

export interface ProbeServer {
  /** Stops listening and drops every connection. */
  close(): void;
}

/**
 * Starts listening without waiting for it (undefined when the port is 0); a port that cannot be bound is
 * logged and the worker runs on without the endpoint. The server and its sockets never keep drain-init alive.
 */
export function startProbeServer(config: ProbeConfig, log: Logger, sources: ProbeSources): ProbeServer | undefined {
  if (config.probePort === 0) return undefined;
  // Loaded only when needed, and not with import(): an ES import of node:http evaluates all its exports,
  // loading undici, http2, tls and crypto (tens of ms and about 6 MB); this takes 3 ms and about 1.5 MB.
  const { createServer } = process.getBuiltinModule('node:http');
  const warnings = new ThrottledWarnings(log, WARNING_INTERVAL_MS, sources.clock);
  const server = createServer(
    {
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: REQUEST_TIMEOUT_MS,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: TIMEOUT_CHECK_INTERVAL_MS,
      maxHeaderSize: MAX_HEADER_BYTES,
    },
    (request, response) => {
      void respond(request, response, config, sources).catch((error: unknown) => {
        warnings.warn(
          'internal',
          { err: error instanceof Error ? error.message : String(error) },
          'probe: could not answer a request',
        );
        if (!response.headersSent)
          send(response, { status: 500, headers: { Connection: 'close' }, body: 'internal error\n' });
      });
    },
  );
  server.maxConnections = MAX_CONNECTIONS;
  server.maxRequestsPerSocket = MAX_REQUESTS_PER_SOCKET;
  server.setTimeout(IDLE_SOCKET_TIMEOUT_MS);
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => refuseClient(error, socket, warnings));
  server.on('drop', () =>
    warnings.warn('drop', { maxConnections: MAX_CONNECTIONS }, 'probe: connection refused, too many open'),
  );
  server.on('error', (error: Error) => {
    const where = { host: config.probeHost, port: config.probePort, err: error.message };
    if (server.listening) warnings.warn('server error', where, 'probe: server error');
    else
      log.warn(
        where,
        'probe endpoint not started, the worker runs without it; choose another --probe-port, or 0 for none',
      );
  });
  server.on('listening', () =>
    log.info({ host: config.probeHost, port: config.probePort }, 'probe endpoint listening'),
  );
  server.listen({ host: config.probeHost, port: config.probePort });
  server.unref();
  return { close: () => closeServer(server) };
}

async function respond(
  request: IncomingMessage,
  response: ServerResponse,
  config: ProbeConfig,
  sources: ProbeSources,
): Promise<void> {
  const routed = route(request);
  if ('refusal' in routed) {
    send(response, routed.refusal);
    return;
  }
  const sidekiqFigures = routed.endpoint === 'metrics' ? await sources.sidekiqStats() : undefined;
  send(
    response,
    answer(routed.endpoint, { snapshot: snapshot(sources), maxBeatAgeMs: config.maxBeatAgeMs, stats: sidekiqFigures }),
  );
}

function send(response: ServerResponse, { status, headers, body }: ProbeResponse): void {
  response.writeHead(status, { ...headers, 'Content-Length': Buffer.byteLength(body) });
  response.end(body);
}

function snapshot(sources: ProbeSources): ProbeSnapshot {
  const nowMono = sources.clock.now();
  const nowEpochMs = sources.clock.epochMs();
  const childPid = sources.childPid();
  const { phase, plan, deadline } = sources.stop;
  const redis = sources.redis?.();
  return {
    state: childPid !== undefined ? phase : sources.restartPending() ? 'starting' : 'exited',
    childPid,
    nowEpochMs,
    uptimeS: process.uptime(),
    restarts: sources.restarts(),
    jobsRecovered: sources.jobsRecovered(),
    stop:
      childPid === undefined || plan === undefined || deadline === undefined
        ? undefined
        : { plan: describePlan(plan), deadlineEpochMs: nowEpochMs + deadline - nowMono },
    signalsForwarded: sources.forwarder.forwardedCounts,
    zombiesReaped: sources.zombiesReaped(),
    redis,
    sidekiq: sources.sidekiq(),
  };
}

/** Answers what Node could not parse (garbage, oversized headers, a timeout) with one status line, then closes. */
function refuseClient(error: NodeJS.ErrnoException, socket: Duplex, warnings: ThrottledWarnings): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? '431 Request Header Fields Too Large'
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? '408 Request Timeout'
        : '400 Bad Request';
  warnings.warn(error.code ?? 'client error', { reason: error.message }, `probe: request refused with ${status}`);
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
}

function closeServer(server: Server): void {
  server.close();
  server.closeAllConnections();
}
