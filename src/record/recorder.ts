// Keeps this instance's record in Redis: written at once on every change and refreshed every heartbeat
// interval, in one script run (beat.lua) that writes only while this drain-init owns the record, with
// Redis's own clock for every timestamp.
import { hostname } from 'node:os';
import type { Config } from '../config/parse.js';
import { within, type Cancel, type Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { COMMAND_TIMEOUT_MS, type RedisConnection } from '../redis/connection.js';
import { LuaScript } from '../redis/lua-script.js';
import beatSource from './beat.lua';
import { RedisClock } from './redis-clock.js';
import {
  applyUpdate,
  initialRecord,
  parseCollisionNote,
  recordFields,
  recordKeys,
  type Identity,
  type Ownership,
  type RecordState,
  type RecordUpdate,
} from './schema.js';

const BEAT_SCRIPT = new LuaScript(beatSource);

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

export interface RecordConfig extends Pick<Config, 'redisPrefix' | 'heartbeatIntervalMs' | 'heartbeatTtlMs'> {
  /** Claimed (claim.ts). */
  readonly instanceId: string;
}

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
  /** Writes every field and refreshes the TTLs and the registry, unless another owns the record. */
  write(fields: Readonly<Record<string, string>>, nowMs: number): Promise<BeatReply>;
  /** Redis's TIME. */
  time(): Promise<unknown>;
  succeeded(): void;
  failed(error: unknown): void;
}

export type BeatReply =
  /** Written; `time` is Redis's TIME read in the same step; `note` what a drain-init that wanted this id left. */
  | { readonly kind: 'written'; readonly time: unknown; readonly note: string | undefined }
  /** Another drain-init owns the record now: nothing was written. */
  | { readonly kind: 'taken'; readonly owner: string };

/** The record's store in Redis: one run of beat.lua (six O(1) commands) per write. */
export function recordStore(connection: RedisConnection, config: RecordConfig, token: string): RecordStore {
  const { client } = connection;
  const keys = recordKeys(config.redisPrefix, config.instanceId);
  const ttl = String(config.heartbeatTtlMs);
  const writes = { kind: 'write', keys: { [keys.instance]: 'hash', [keys.registry]: 'zset' } } as const;
  return {
    ready: () => connection.writable,
    get available() {
      return connection.available;
    },
    endpoint: connection.endpoint,
    onReady: (listener) => void client.on('ready', listener),
    write: async (fields, nowMs) => {
      const pairs = Object.entries(fields).flat();
      const args = [token, ttl, config.instanceId, String(nowMs), ...pairs];
      return parseBeatReply(await BEAT_SCRIPT.run(client, [keys.instance, keys.registry], args));
    },
    time: () => client.time(),
    succeeded: () => connection.commandSucceeded(writes),
    failed: (error) => connection.commandFailed(error, writes),
  };
}

/** Starts the heartbeat of this instance's record (claimed for `owner`) on a connection its caller owns and closes. */
export function startInstanceRecorder(
  connection: RedisConnection,
  config: RecordConfig,
  owner: Ownership,
  log: Logger,
  identity: Identity,
  clock: Clock,
): InstanceRecorder {
  return new Recorder(recordStore(connection, config, owner.token), config, owner, log, identity, clock);
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
  /** Another drain-init took the record over (it found this one dead): no more writes. */
  #taken = false;

  constructor(
    private readonly store: RecordStore,
    private readonly config: RecordConfig,
    owner: Ownership,
    private readonly log: Logger,
    identity: Identity,
    private readonly clock: Clock,
  ) {
    this.#record = initialRecord(identity, owner, process.pid, hostname(), clock.now());
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
    if (this.#closed || this.#taken || !this.store.ready()) return;
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
    if (this.#taken) return true;
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
      const reply = await this.store.write(recordFields(this.#record, offset, now), now);
      this.store.succeeded();
      if (reply.kind === 'taken') {
        this.#taken = true;
        this.log.error(
          { instanceId: this.config.instanceId, owner: reply.owner },
          "another drain-init took this instance's record over (it found this one dead): this one writes it no more; give each container its own --instance-id",
        );
        return true;
      }
      this.#redisClock.observe(reply.time, sentAt, this.clock.now());
      if (reply.note !== undefined) this.#reportCollision(reply.note);
      return true;
    } catch (error) {
      this.#failures++;
      this.store.failed(error);
      return false;
    }
  }

  #reportCollision(text: string): void {
    const note = parseCollisionNote(text);
    this.log.warn(
      { instanceId: this.config.instanceId, other: note ?? text },
      note === undefined
        ? 'another drain-init started with this instance id while this one runs'
        : `another drain-init (pid ${note.pid} on ${note.hostname}) started with this instance id while this one runs: it took '${note.instanceId}' instead`,
    );
  }

  async #readClock(): Promise<void> {
    const sentAt = this.clock.now();
    const reply = await this.store.time();
    this.#redisClock.observe(reply, sentAt, this.clock.now());
  }
}

/** beat.lua's reply. */
export function parseBeatReply(reply: unknown): BeatReply {
  if (Array.isArray(reply) && reply.every((item) => typeof item === 'string')) {
    const [kind, first = '', seconds, micros] = reply as string[];
    if (kind === 'taken' && reply.length === 2) return { kind, owner: first };
    if (kind === 'ok' && reply.length === 4)
      return { kind: 'written', time: [seconds, micros], note: first || undefined };
  }
  throw new Error(`unexpected beat reply ${JSON.stringify(reply)}`);
}

/**
 * The recorder of a record whose instance id is not claimed yet (the claim waits for Redis, and may wait a
 * heartbeat interval to tell whether an earlier owner lives): it keeps the latest state and hands it to the
 * real recorder once there is one. Meanwhile it counts the beats Redis was not there for, as the real one does.
 */
export class DeferredRecorder implements InstanceRecorder {
  #target: InstanceRecorder | undefined;
  #pending: RecordUpdate = {};
  #closed = false;
  #missedBeats = 0;
  readonly #stopCounting: Cancel;

  constructor(redisReady: () => boolean, clock: Clock, heartbeatIntervalMs: number) {
    this.#stopCounting = clock.every(heartbeatIntervalMs, () => {
      if (!redisReady()) this.#missedBeats++;
    });
  }

  get connected(): boolean {
    return this.#target?.connected ?? false;
  }

  get heartbeatFailures(): number {
    return this.#missedBeats + (this.#target?.heartbeatFailures ?? 0);
  }

  update(fields: RecordUpdate): void {
    if (this.#target !== undefined) this.#target.update(fields);
    else this.#pending = { ...this.#pending, ...fields };
  }

  /** The recorder of the claimed record; nothing is bound once closed (drain-init is on its way out). */
  bind(target: InstanceRecorder): void {
    this.#stopCounting();
    if (this.#closed) return;
    this.#target = target;
    if (Object.keys(this.#pending).length > 0) target.update(this.#pending);
  }

  async close(final: RecordUpdate): Promise<void> {
    this.#closed = true;
    this.#stopCounting();
    await this.#target?.close(final);
  }
}
