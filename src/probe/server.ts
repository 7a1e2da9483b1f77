// The probe endpoint's HTTP server: node:http with tight limits, so no client can hold it, fill
// drain-init's memory or flood its log, and nothing it does can hold up a signal or the stop.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Config } from '../config/parse.js';
import type { Cancel, Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { ThrottledWarnings } from '../log/throttle.js';
import type { SidekiqStats } from '../sidekiq/stats.js';
import type { WorkerView } from '../sidekiq/view.js';
import type { StopPhase } from '../stop/sequence.js';
import { describePlan, type StopPlan } from '../stop/timeline.js';
import { answer, hasBody, OWN_PATHS, route, type ProbeResponse } from './routes.js';
import type { JobCounts, ProbeSnapshot, RedisReport } from './state.js';

export type ProbeConfig = Pick<Config, 'probePort' | 'probeHost' | 'maxBeatAgeMs' | 'alivePath'>;

/**
 * Kubelets and Prometheus need a few. Past this many, the connection idle the longest is closed to make
 * room (see ConnectionRoom), so idle connections held open by anyone (slowloris) cannot lock probes out.
 */
export const MAX_CONNECTIONS = 64;
/** A connection is closed to make room only once it has been open this long; over the hard cap, the second. */
const MIN_AGE_TO_CLOSE_MS = 100;
const HARD_CAP_CONNECTIONS = 4 * MAX_CONNECTIONS;
const MIN_AGE_TO_CLOSE_OVER_CAP_MS = 10;
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
/**
 * A refused request's body is read and dropped before the answer, up to this much and this long: a
 * connection closed with bytes unread is reset (RST), and a client still sending them would lose the answer
 * (RFC 9112 §9.6). A longer or slower body is answered without waiting for the rest.
 */
const MAX_DROPPED_BODY_BYTES = 4 * 1024 * 1024;
export const MAX_BODY_WAIT_MS = 2_000;
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
  readonly jobs: () => JobCounts;
  readonly workerDeaths: () => ReadonlyMap<string, number>;
  /** Undefined without a Redis URL. */
  readonly redis: (() => RedisReport) | undefined;
  /** Sidekiq's view of the worker; undefined unless it is stopped as a Sidekiq watched through Redis. */
  readonly sidekiq: () => WorkerView | undefined;
  /** Sidekiq's fleet-wide figures for /metrics; undefined when there are none to give. Never rejects. */
  readonly sidekiqStats: () => Promise<SidekiqStats | undefined> | undefined;
  /** The fleet's platform stops that ran out of time, from Redis; undefined without a Redis URL. Never rejects. */
  readonly stopsCut: (() => Promise<number | undefined>) | undefined;
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
  const room = new ConnectionRoom(
    {
      capacity: MAX_CONNECTIONS,
      hardCap: HARD_CAP_CONNECTIONS,
      minAgeMs: MIN_AGE_TO_CLOSE_MS,
      minAgeOverCapMs: MIN_AGE_TO_CLOSE_OVER_CAP_MS,
    },
    sources.clock,
    () =>
      warnings.warn(
        'evicted',
        { maxConnections: MAX_CONNECTIONS },
        'probe: too many connections open: the one idle the longest was closed to make room',
      ),
  );
  server.maxRequestsPerSocket = MAX_REQUESTS_PER_SOCKET;
  server.setTimeout(IDLE_SOCKET_TIMEOUT_MS);
  server.on('connection', (socket: Socket) => room.admit(socket));
  server.on('request', (request: IncomingMessage, response: ServerResponse) => room.answering(request, response));
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => refuseClient(error, socket, warnings));
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
  if (OWN_PATHS.includes(config.alivePath))
    log.warn(
      { alivePath: config.alivePath },
      "probe: --alive-path names one of drain-init's own paths, which keeps its own answer",
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
  const routed = route(request, config.alivePath);
  if ('refusal' in routed) {
    if (hasBody(request.headers)) await bodyDropped(request, sources.clock);
    send(response, routed.refusal);
    return;
  }
  const metrics = routed.endpoint === 'metrics';
  const [sidekiqFigures, stopsCut] = metrics
    ? await Promise.all([sources.sidekiqStats(), sources.stopsCut?.()])
    : [undefined, undefined];
  send(
    response,
    answer(routed.endpoint, {
      snapshot: snapshot(sources),
      maxBeatAgeMs: config.maxBeatAgeMs,
      stats: sidekiqFigures,
      stopsCut,
    }),
  );
}

/**
 * Resolves once the request's body has been read to its end (the request closes), or MAX_DROPPED_BODY_BYTES
 * of it, or after MAX_BODY_WAIT_MS.
 */
function bodyDropped(request: IncomingMessage, clock: Clock): Promise<void> {
  return new Promise((resolve) => {
    let bytes = 0;
    const done = () => {
      cancel();
      request.off('data', dropped);
      resolve();
    };
    const dropped = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > MAX_DROPPED_BODY_BYTES) done();
    };
    const cancel = clock.schedule(MAX_BODY_WAIT_MS, done);
    request.on('data', dropped);
    request.once('close', done);
  });
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
    jobs: sources.jobs(),
    workerDeaths: sources.workerDeaths(),
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

/** Runs `action` once the event loop has read what is pending on the sockets accepted so far. */
export type AfterPendingReads = (action: () => void) => void;

/**
 * A connection's data is read in the turn of the event loop after the one that accepted it; a callback set
 * with setImmediate from a setImmediate runs after that turn's reads.
 */
const afterPendingReads: AfterPendingReads = (action) => setImmediate(() => setImmediate(action));

/**
 * The open connections, and which to close when there are more than there is room for: never one whose
 * request is being answered, nor one accepted so recently that what it sent has not been read yet (a
 * probe sends its request with the connection, so it is being answered by then, however many came in the
 * same burst); of the others, the one idle the longest (since it connected, or since its last answer),
 * once it has been open `minAgeMs`, or `minAgeOverCapMs` while there are more than `hardCap`, which bounds
 * how far past the room a flood can push. Connections that never finish a request are the first to go.
 */
export class ConnectionRoom {
  readonly #open = new Map<Duplex, { since: number; answering: number; batch: number }>();
  /** Connections of a batch up to this one have had what they sent read. */
  #settledBatch = -1;
  #batch = 0;
  #settling = false;
  #trimLater: { readonly atMs: number; readonly cancel: Cancel } | undefined;

  constructor(
    private readonly limits: {
      readonly capacity: number;
      readonly hardCap: number;
      readonly minAgeMs: number;
      readonly minAgeOverCapMs: number;
    },
    private readonly clock: Clock,
    /** A connection was closed to make room. */
    private readonly evicted: () => void,
    private readonly settle: AfterPendingReads = afterPendingReads,
  ) {}

  get size(): number {
    return this.#open.size;
  }

  admit(socket: Duplex): void {
    this.#open.set(socket, { since: this.clock.now(), answering: 0, batch: this.#batch });
    socket.once('close', () => this.#open.delete(socket));
    this.#settleLater();
    this.#trim();
  }

  /** A request of one of the connections is being answered until its response is done. */
  answering(request: IncomingMessage, response: ServerResponse): void {
    const entry = this.#open.get(request.socket);
    if (entry === undefined) return;
    entry.answering++;
    response.once('close', () => {
      entry.answering--;
      entry.since = this.clock.now();
    });
  }

  /** The connections accepted until now count as read once the event loop has read what they sent. */
  #settleLater(): void {
    if (this.#settling) return;
    this.#settling = true;
    const batch = this.#batch++;
    this.settle(() => {
      this.#settling = false;
      this.#settledBatch = batch;
      if ([...this.#open.values()].some((entry) => entry.batch > batch)) this.#settleLater();
      this.#trim();
    });
  }

  /** Closes connections until there is room, or until those left are being answered, unread or too young. */
  #trim(): void {
    while (this.#open.size > this.limits.capacity) {
      const minAgeMs = this.#open.size > this.limits.hardCap ? this.limits.minAgeOverCapMs : this.limits.minAgeMs;
      const victim = this.#longestIdle();
      if (victim === undefined) return;
      const [socket, since] = victim;
      if (this.clock.now() - since < minAgeMs) {
        this.#trimAt(since + minAgeMs);
        return;
      }
      this.#open.delete(socket);
      socket.destroy();
      this.evicted();
    }
  }

  /** Trims again at `atMs` on the clock, unless a trim is due sooner. */
  #trimAt(atMs: number): void {
    if (this.#trimLater !== undefined && this.#trimLater.atMs <= atMs) return;
    this.#trimLater?.cancel();
    const cancel = this.clock.schedule(atMs - this.clock.now(), () => {
      this.#trimLater = undefined;
      this.#trim();
    });
    this.#trimLater = { atMs, cancel };
  }

  #longestIdle(): [Duplex, number] | undefined {
    let victim: [Duplex, number] | undefined;
    for (const [socket, entry] of this.#open) {
      const candidate = entry.answering === 0 && entry.batch <= this.#settledBatch;
      if (candidate && (victim === undefined || entry.since < victim[1])) victim = [socket, entry.since];
    }
    return victim;
  }
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
