import { Redis, type RedisOptions } from 'ioredis';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { ThrottledWarnings } from '../log/throttle.js';
import { RedisHealth, type HealthView } from './health.js';
import { describeEndpoint, type RedisEndpoint, type SentinelSettings } from './url.js';

/** No Redis command holds up a signal, the stop sequence or the child for longer than this. */
export const COMMAND_TIMEOUT_MS = 1_000;
const FIRST_RECONNECT_DELAY_MS = 100;
const MAX_RECONNECT_DELAY_MS = 2_000;

/** What Redis's TYPE answers for a key drain-init uses. */
export type RedisType = 'string' | 'hash' | 'zset' | 'set' | 'list';

/** One command (or script, pipeline) as its user reports it: whether it writes, and the keys it uses, by type. */
export interface CommandUse {
  readonly kind: 'read' | 'write';
  /** Named in a WRONGTYPE report and marked usable again when a command on them goes through. */
  readonly keys?: Readonly<Record<string, RedisType>>;
}

/** The one Redis connection every Redis feature shares. */
export interface RedisConnection {
  readonly client: Redis;
  /** The URL without its password: the only form of it for logs, errors and endpoints. */
  readonly endpoint: string;
  /** Connected, and reads and writes go through (the state is up). */
  readonly available: boolean;
  /** Connected, and a write may be tried now: while Redis refuses writes, once per back-off period. */
  readonly writable: boolean;
  /** The state, its reason and the keys of another type, for /status and /metrics. */
  readonly health: HealthView;
  /**
   * Users of the connection report each command's outcome: error replies (READONLY, OOM, NOPERM)
   * leave the socket up, so only the commands can tell that Redis is not taking writes.
   */
  commandSucceeded(use: CommandUse): void;
  commandFailed(error: unknown, use: CommandUse): void;
  close(): void;
}

export function redisOptions(endpoint: RedisEndpoint, connectionName: string): RedisOptions {
  return {
    ...(endpoint.sentinel !== undefined
      ? sentinelOptions(endpoint.sentinel, endpoint.tls)
      : endpoint.socket !== undefined
        ? { path: endpoint.socket }
        : { host: endpoint.host, port: endpoint.port }),
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

/** Reports of a WRONGTYPE on no key drain-init named, at most one per this. */
const UNNAMED_WRONG_TYPE_EVERY_MS = 600_000;

/** Starts connecting in the background; never throws, whatever state Redis is in. */
export function connectRedis(
  endpoint: RedisEndpoint,
  log: Logger,
  connectionName: string,
  clock: Clock,
): RedisConnection {
  const client = new Redis(redisOptions(endpoint, connectionName));
  const health = new RedisHealth(log, describeEndpoint(endpoint), endpoint.password, clock);
  const unnamed = new ThrottledWarnings(log, UNNAMED_WRONG_TYPE_EVERY_MS, clock);
  let closing = false;
  const lost = (reason: string): void => {
    if (!closing) health.connectionLost(reason);
  };
  client.on('error', (error: Error) => lost(error.message));
  client.on('close', () => lost('connection closed'));
  /** Which of the command's keys holds another type: TYPE of each, one round trip. */
  const findBroken = async (keys: Readonly<Record<string, RedisType>>, reason: string): Promise<void> => {
    const names = Object.keys(keys);
    const pipeline = client.pipeline();
    for (const key of names) pipeline.type(key);
    const types = (await pipeline.exec().catch(() => null)) ?? [];
    let named = false;
    names.forEach((key, index) => {
      const type = types[index]?.[1];
      if (typeof type !== 'string' || type === 'none' || type === keys[key]) return;
      named = true;
      health.keyBroken(key, type, keys[key] ?? '', reason);
    });
    if (!named) unnamed.warn('wrong-type', { reason }, 'a Redis command met a key of another type than it expects');
  };
  return {
    client,
    endpoint: describeEndpoint(endpoint),
    get available() {
      return client.status === 'ready' && health.state === 'up';
    },
    get writable() {
      return client.status === 'ready' && health.writeAllowed();
    },
    get health() {
      return health.view;
    },
    commandSucceeded: (use) => health.succeeded(use.kind, Object.keys(use.keys ?? {})),
    commandFailed: (error, use) => {
      if (closing) return;
      const failure = health.failed(error, use.kind);
      if (failure.kind === 'wrong-type') void findBroken(use.keys ?? {}, failure.reason);
    },
    close: () => {
      closing = true;
      client.disconnect();
    },
  };
}
