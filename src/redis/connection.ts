import { Redis, type RedisOptions } from 'ioredis';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { describeEndpoint, type RedisEndpoint, type SentinelSettings } from './url.js';

/** No Redis command holds up a signal, the stop sequence or the child for longer than this. */
export const COMMAND_TIMEOUT_MS = 1_000;
const FIRST_RECONNECT_DELAY_MS = 100;
const MAX_RECONNECT_DELAY_MS = 2_000;

/** The one Redis connection every Redis feature shares. */
export interface RedisConnection {
  readonly client: Redis;
  /** The URL without its password: the only form of it for logs, errors and endpoints. */
  readonly endpoint: string;
  /** Connected, and the last command reported went through. */
  readonly available: boolean;
  /**
   * Users of the connection report each command's outcome: error replies (READONLY, OOM, NOPERM)
   * leave the socket up, so only the commands can tell that Redis is not taking writes.
   */
  commandSucceeded(): void;
  commandFailed(error: unknown): void;
  close(): void;
}

export function redisOptions(endpoint: RedisEndpoint, connectionName: string): RedisOptions {
  return {
    ...(endpoint.sentinel === undefined
      ? { host: endpoint.host, port: endpoint.port }
      : sentinelOptions(endpoint.sentinel, endpoint.tls)),
    db: endpoint.db,
    ...(endpoint.username === undefined ? {} : { username: endpoint.username }),
    ...(endpoint.password === undefined ? {} : { password: endpoint.password }),
    ...(endpoint.tls ? { tls: {} } : {}),
    connectionName,
    // While disconnected, a command fails at once instead of waiting in a queue that grows with the outage.
    enableOfflineQueue: false,
    // Commands in flight when the connection drops fail at once too; their users write the latest state again.
    maxRetriesPerRequest: 0,
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: COMMAND_TIMEOUT_MS,
    // A server that stops answering without closing the socket is dropped and reconnected.
    socketTimeout: 2 * COMMAND_TIMEOUT_MS,
    retryStrategy: reconnectDelay,
  };
}

/**
 * Redis Sentinel: the sentinels are asked for the primary at each connection; ioredis's failover detector
 * listens to them for `+switch-master` and reconnects to the new primary, and a demoted primary's
 * READONLY reply sends the connection back to the sentinels too.
 */
function sentinelOptions(sentinel: SentinelSettings, tls: boolean): RedisOptions {
  return {
    sentinels: sentinel.sentinels.map(({ host, port }) => ({ host, port })),
    name: sentinel.masterName,
    role: 'master',
    ...(sentinel.password === undefined ? {} : { sentinelPassword: sentinel.password }),
    failoverDetector: true,
    sentinelRetryStrategy: reconnectDelay,
    sentinelCommandTimeout: COMMAND_TIMEOUT_MS,
    // TLS to the primary; the sentinels are asked in plain text.
    ...(tls ? { enableTLSForSentinelMode: true } : {}),
    reconnectOnError: (error) => error.message.startsWith('READONLY'),
  };
}

/** Doubling from 100 ms to at most 2 s; reconnection never stops. */
export function reconnectDelay(attempt: number): number {
  return Math.min(FIRST_RECONNECT_DELAY_MS * 2 ** Math.max(0, attempt - 1), MAX_RECONNECT_DELAY_MS);
}

/** Starts connecting in the background; never throws, whatever state Redis is in. */
export function connectRedis(
  endpoint: RedisEndpoint,
  log: Logger,
  connectionName: string,
  clock: Clock,
): RedisConnection {
  const client = new Redis(redisOptions(endpoint, connectionName));
  const outages = new OutageLog(log, describeEndpoint(endpoint), endpoint.password, clock);
  let closing = false;
  const down = (reason: string): void => {
    if (!closing) outages.down(reason);
  };
  client.on('error', (error: Error) => down(error.message));
  client.on('close', () => down('connection closed'));
  return {
    client,
    endpoint: describeEndpoint(endpoint),
    get available() {
      return client.status === 'ready' && !outages.inOutage;
    },
    commandSucceeded: () => outages.up(),
    commandFailed: (error) => down(error instanceof Error ? error.message : String(error)),
    close: () => {
      closing = true;
      client.disconnect();
    },
  };
}

/** One warning when Redis becomes unavailable and one line when it is back, however long the outage lasts. */
export class OutageLog {
  private outageStart: number | undefined;
  private everUp = false;

  constructor(
    private readonly log: Logger,
    private readonly endpoint: string,
    private readonly password: string | undefined,
    private readonly clock: Clock,
  ) {}

  get inOutage(): boolean {
    return this.outageStart !== undefined || !this.everUp;
  }

  down(reason: string): void {
    if (this.outageStart !== undefined) return;
    this.outageStart = this.clock.now();
    this.log.warn({ redis: this.endpoint, reason: this.scrub(reason) }, 'Redis unavailable; the worker runs on');
  }

  up(): void {
    if (this.outageStart !== undefined) {
      const outageMs = Math.round(this.clock.now() - this.outageStart);
      this.log.info({ redis: this.endpoint, outageMs }, 'Redis available again');
    } else if (!this.everUp) {
      this.log.info({ redis: this.endpoint }, 'connected to Redis');
    }
    this.outageStart = undefined;
    this.everUp = true;
  }

  /** Redis and ioredis do not echo passwords; this keeps it so if one ever does. */
  private scrub(reason: string): string {
    return this.password === undefined ? reason : reason.replaceAll(this.password, '***');
  }
}
