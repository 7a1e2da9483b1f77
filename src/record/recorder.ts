// Keeps this instance's record in Redis: written at once on every change and refreshed every heartbeat
// interval, in one pipeline, with Redis's own clock for every timestamp.
import { hostname } from 'node:os';
import type { Config } from '../config/parse.js';
import { within, type Cancel, type Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { COMMAND_TIMEOUT_MS, type RedisConnection } from '../redis/connection.js';
import { RedisClock } from './redis-clock.js';
import {
  applyUpdate,
  initialRecord,
  recordFields,
  recordKeys,
  type Identity,
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

export type RecordConfig = Pick<Config, 'instanceId' | 'redisPrefix' | 'heartbeatIntervalMs' | 'heartbeatTtlMs'>;

/** Where the record is written: Redis through the shared connection (recordStore), or a test's fake. */
export interface RecordStore {
  /** Connected: a write may be tried. */
  ready(): boolean;
  /** Connected and the last command went through. */
  readonly available: boolean;
  /** For logs: the URL without its password. */
  readonly endpoint: string;
  /** Called at every (re)connection: Redis may have lost the record with a restart. */
  onReady(listener: () => void): void;
  /** Writes every field, refreshes the TTLs and the registry; resolves with Redis's TIME read in the same round trip. */
  write(fields: Readonly<Record<string, string>>, nowMs: number): Promise<unknown>;
  /** Redis's TIME. */
  time(): Promise<unknown>;
  succeeded(): void;
  failed(error: unknown): void;
}

/** The record's store in Redis: one pipeline of six O(1) commands per write. */
export function recordStore(connection: RedisConnection, config: RecordConfig): RecordStore {
  const { client } = connection;
  const keys = recordKeys(config.redisPrefix, config.instanceId);
  const ttl = config.heartbeatTtlMs;
  return {
    ready: () => client.status === 'ready',
    get available() {
      return connection.available;
    },
    endpoint: connection.endpoint,
    onReady: (listener) => void client.on('ready', listener),
    write: async (fields, nowMs) =>
      lastReply(
        await client
          .pipeline()
          .hset(keys.instance, fields)
          .pexpire(keys.instance, ttl)
          .zadd(keys.registry, nowMs, config.instanceId)
          .zremrangebyscore(keys.registry, '-inf', `(${nowMs - ttl}`)
          .pexpire(keys.registry, ttl)
          .time()
          .exec(),
      ),
    time: () => client.time(),
    succeeded: () => connection.commandSucceeded(),
    failed: (error) => connection.commandFailed(error),
  };
}

/** Starts the heartbeat of this instance's record on a connection its caller owns and closes. */
export function startInstanceRecorder(
  connection: RedisConnection,
  config: RecordConfig,
  log: Logger,
  identity: Identity,
  clock: Clock,
): InstanceRecorder {
  return new Recorder(recordStore(connection, config), config, log, identity, clock);
}

export class Recorder implements InstanceRecorder {
  #record: RecordState;
  readonly #redisClock = new RedisClock();
  readonly #stopBeating: Cancel;
  #writing: Promise<boolean> | undefined;
  /** The record changed while a write was in flight: write again when it lands. */
  #stale = false;
  #closed = false;
  #failures = 0;

  constructor(
    private readonly store: RecordStore,
    config: RecordConfig,
    private readonly log: Logger,
    identity: Identity,
    private readonly clock: Clock,
  ) {
    this.#record = initialRecord(identity, process.pid, hostname(), clock.now());
    this.#stopBeating = clock.every(config.heartbeatIntervalMs, () => this.#beat());
    store.onReady(() => this.#write());
  }

  get connected(): boolean {
    return this.store.available;
  }

  get heartbeatFailures(): number {
    return this.#failures;
  }

  update(fields: RecordUpdate): void {
    if (this.#closed) return;
    this.#record = applyUpdate(this.#record, fields, this.clock.now());
    this.#write();
  }

  async close(final: RecordUpdate): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopBeating();
    this.#record = applyUpdate(this.#record, final, this.clock.now());
    const written = await within(this.clock, this.#writeFinal(), CLOSE_BUDGET_MS, false);
    if (!written) {
      this.log.warn(
        { redis: this.store.endpoint, state: this.#record.state },
        'final state not written to Redis; the record expires as it was',
      );
    }
  }

  /** A beat while a write is in flight is skipped, so a slow Redis never piles up writes. */
  #beat(): void {
    if (!this.store.ready()) this.#failures++;
    if (this.#writing === undefined) this.#write();
  }

  #write(): void {
    if (this.#closed || !this.store.ready()) return;
    if (this.#writing !== undefined) {
      this.#stale = true;
      return;
    }
    this.#writing = this.#send().finally(() => {
      this.#writing = undefined;
      if (this.#stale) {
        this.#stale = false;
        this.#write();
      }
    });
  }

  async #writeFinal(): Promise<boolean> {
    if (!this.store.ready()) return false;
    await this.#writing;
    return this.#send();
  }

  /** Resolves false (after reporting why) instead of rejecting. */
  async #send(): Promise<boolean> {
    try {
      if (!this.#redisClock.synced) await this.#readClock();
      const sentAt = this.clock.now();
      const offset = this.#redisClock.offset();
      const now = Math.round(sentAt + offset);
      const time = await this.store.write(recordFields(this.#record, offset, now), now);
      this.#redisClock.observe(time, sentAt, this.clock.now());
      this.store.succeeded();
      return true;
    } catch (error) {
      this.#failures++;
      this.store.failed(error);
      return false;
    }
  }

  async #readClock(): Promise<void> {
    const sentAt = this.clock.now();
    const reply = await this.store.time();
    this.#redisClock.observe(reply, sentAt, this.clock.now());
  }
}

/** The last command's reply; throws the first error of any command in the pipeline. */
function lastReply(replies: [Error | null, unknown][] | null): unknown {
  if (replies === null) throw new Error('pipeline aborted');
  for (const [error] of replies) if (error !== null) throw error;
  return replies.at(-1)?.[1];
}
