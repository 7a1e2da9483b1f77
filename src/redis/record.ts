import { hostname } from 'node:os';
import type { RedisConfig } from '../config/parse.js';
import type { Logger } from '../log/logger.js';
import { RedisClock } from './clock.js';
import { COMMAND_TIMEOUT_MS, type RedisConnection } from './connection.js';
import {
  applyUpdate,
  initialRecord,
  recordFields,
  recordKeys,
  type Identity,
  type RecordKeys,
  type RecordState,
  type RecordUpdate,
} from './schema.js';

export type { InstanceState, RecordUpdate } from './schema.js';

export interface InstanceRecorder {
  /** Never throws, never blocks: writes at once when connected, else keeps the latest state for the reconnection. */
  update(fields: RecordUpdate): void;
  /** Writes the final state (the record then expires after the heartbeat TTL) within about 1 s. */
  close(final: RecordUpdate): Promise<void>;
  readonly connected: boolean;
  /** Writes of the record that failed, and beats skipped while Redis was unreachable. */
  readonly heartbeatFailures: number;
}

const CLOSE_BUDGET_MS = COMMAND_TIMEOUT_MS;

export type RecordConfig = Pick<RedisConfig, 'instanceId' | 'redisPrefix' | 'heartbeatIntervalMs' | 'heartbeatTtlMs'>;

/** Starts the heartbeat of this instance's Redis record on a connection its caller owns and closes. */
export function startInstanceRecorder(
  connection: RedisConnection,
  config: RecordConfig,
  log: Logger,
  identity: Identity,
): InstanceRecorder {
  return new RedisInstanceRecorder(connection, config, log, identity);
}

class RedisInstanceRecorder implements InstanceRecorder {
  private record: RecordState;
  private readonly keys: RecordKeys;
  private readonly clock = new RedisClock();
  private readonly timer: NodeJS.Timeout;
  private writing: Promise<boolean> | undefined;
  /** The record changed while a write was in flight: write again when it lands. */
  private stale = false;
  private closed = false;
  private failures = 0;

  constructor(
    private readonly connection: RedisConnection,
    private readonly config: RecordConfig,
    private readonly log: Logger,
    identity: Identity,
  ) {
    this.record = initialRecord(identity, process.pid, hostname(), performance.now());
    this.keys = recordKeys(config.redisPrefix, config.instanceId);
    this.timer = setInterval(() => this.beat(), config.heartbeatIntervalMs).unref();
    // Also after every reconnection: the record may have been lost with a restarted Redis.
    connection.client.on('ready', () => this.write());
  }

  get connected(): boolean {
    return this.connection.available;
  }

  get heartbeatFailures(): number {
    return this.failures;
  }

  update(fields: RecordUpdate): void {
    if (this.closed) return;
    this.record = applyUpdate(this.record, fields, performance.now());
    this.write();
  }

  async close(final: RecordUpdate): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.record = applyUpdate(this.record, final, performance.now());
    const written = await withTimeout(this.writeFinal(), CLOSE_BUDGET_MS, false);
    if (!written)
      this.log.warn(
        { redis: this.connection.endpoint, state: this.record.state },
        'final state not written to Redis; the record expires as it was',
      );
  }

  /** A beat while a write is in flight is skipped, so a slow Redis never piles up writes. */
  private beat(): void {
    if (this.connection.client.status !== 'ready') this.failures++;
    if (this.writing === undefined) this.write();
  }

  private write(): void {
    if (this.closed || this.connection.client.status !== 'ready') return;
    if (this.writing !== undefined) {
      this.stale = true;
      return;
    }
    this.writing = this.send().finally(() => {
      this.writing = undefined;
      if (this.stale) {
        this.stale = false;
        this.write();
      }
    });
  }

  private async writeFinal(): Promise<boolean> {
    if (this.connection.client.status !== 'ready') return false;
    await this.writing;
    return this.send();
  }

  /** One pipeline of six O(1) commands; resolves false (after reporting why) instead of rejecting. */
  private async send(): Promise<boolean> {
    const { client } = this.connection;
    try {
      if (!this.clock.synced) await this.readClock();
      const sentAt = performance.now();
      const now = Math.round(sentAt + this.clock.offset());
      const ttl = this.config.heartbeatTtlMs;
      const replies = await client
        .pipeline()
        .hset(this.keys.instance, recordFields(this.record, this.clock.offset(), now))
        .pexpire(this.keys.instance, ttl)
        .zadd(this.keys.registry, now, this.config.instanceId)
        .zremrangebyscore(this.keys.registry, '-inf', `(${now - ttl}`)
        .pexpire(this.keys.registry, ttl)
        .time()
        .exec();
      this.clock.observe(lastReply(replies), sentAt, performance.now());
      this.connection.commandSucceeded();
      return true;
    } catch (error) {
      this.failures++;
      this.connection.commandFailed(error);
      return false;
    }
  }

  private async readClock(): Promise<void> {
    const sentAt = performance.now();
    const reply = await this.connection.client.time();
    this.clock.observe(reply, sentAt, performance.now());
  }
}

/** The last command's reply; throws the first error of any command in the pipeline. */
function lastReply(replies: [Error | null, unknown][] | null): unknown {
  if (replies === null) throw new Error('pipeline aborted');
  for (const [error] of replies) if (error !== null) throw error;
  return replies.at(-1)?.[1];
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => (timer = setTimeout(() => resolve(onTimeout), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
