// What state Redis is in, as drain-init's commands find it, and the one log line per change of it. No I/O:
// the connection feeds it each command's outcome and its socket's events, with the time from the clock.
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';

/**
 * connecting: never answered yet; up: reads and writes go through; down: no connection (refused, closed,
 * timed out); refusing: Redis answers but refuses drain-init's commands (READONLY, OOM, NOAUTH ...).
 */
export const REDIS_STATES = ['connecting', 'up', 'down', 'refusing'] as const;
export type RedisState = (typeof REDIS_STATES)[number];

/** A failed command, by what it says of Redis. */
export type Failure =
  /** No answer: the connection is down or the command timed out. */
  | { readonly kind: 'down'; readonly reason: string }
  /** Redis answered with a refusal that holds for every write (or every command): its code, e.g. READONLY. */
  | { readonly kind: 'refusing'; readonly reason: string; readonly code: string }
  /** WRONGTYPE: one key holds another type; Redis itself is fine. */
  | { readonly kind: 'wrong-type'; readonly reason: string }
  /** Any other error reply, or a reply drain-init did not expect: about that command alone. */
  | { readonly kind: 'other'; readonly reason: string };

/** Error replies that refuse writes whatever the key: the server's state, not the command's. */
const REFUSALS = ['READONLY', 'OOM', 'NOAUTH', 'WRONGPASS', 'NOPERM', 'MISCONF', 'MASTERDOWN', 'LOADING', 'BUSY'];
/** Of those, the ones that refuse reads too; another on a read (NOPERM for EVAL alone) is about that command. */
const READ_REFUSALS = ['NOAUTH', 'WRONGPASS', 'MASTERDOWN', 'LOADING', 'BUSY'];
/** Error replies of Redis (ioredis's ReplyError); other errors are the client's: the connection's. */
const REPLY_ERROR = 'ReplyError';
/** drain-init's own complaint about a reply it did not expect (`unexpected beat reply ...`). */
const UNEXPECTED_REPLY = /^unexpected .*reply/;

/** The first word of an error reply, also where a script passes on the error of a command it ran. */
function replyCode(message: string): string {
  const inScript = /@user_script:\d+: -?([A-Z]+)\b/.exec(message);
  return inScript?.[1] ?? /^-?([A-Z]+)\b/.exec(message)?.[1] ?? '';
}

/** What a failed command says of Redis; `kind`: whether the command writes. */
export function classifyRedisError(error: unknown, kind: 'read' | 'write' = 'write'): Failure {
  const reason = firstLine(error instanceof Error ? error.message : String(error));
  const code = replyCode(reason);
  // An error reply starts with its code in capitals (ERR, NOPERM); the client's own errors do not.
  const reply = (error instanceof Error && error.name === REPLY_ERROR) || /^[A-Z]{2,}\b/.test(reason);
  if (code === 'WRONGTYPE') return { kind: 'wrong-type', reason };
  if ((kind === 'write' ? REFUSALS : READ_REFUSALS).includes(code)) return { kind: 'refusing', reason, code };
  if (reply || UNEXPECTED_REPLY.test(reason)) return { kind: 'other', reason };
  return { kind: 'down', reason };
}

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 300)}...` : line;
}

/** A write refused by Redis is tried again after this, doubling to MAX_WRITE_BACKOFF_MS. */
export const FIRST_WRITE_BACKOFF_MS = 1_000;
export const MAX_WRITE_BACKOFF_MS = 30_000;
/** Broken keys remembered at most (each is drain-init's own or Sidekiq's, so a few in practice). */
const MAX_BROKEN_KEYS = 100;

export interface HealthView {
  readonly state: RedisState;
  /** Why it is not up: Redis's or the client's words. */
  readonly reason: string | undefined;
  /** Keys that hold another type than drain-init reads or writes there. */
  readonly brokenKeys: readonly string[];
}

export class RedisHealth {
  #state: RedisState = 'connecting';
  #reason: string | undefined;
  /** When the current outage (down or refusing) began; undefined while up. */
  #outageStart: number | undefined;
  /** States already logged in the current outage: each is logged once however often Redis flips between them. */
  readonly #logged = new Set<RedisState>();
  /** Redis refused a write and has not taken one since: reads alone do not make it up. */
  #writesRefused = false;
  /** Redis's words when it last refused a write. */
  #refusal = '';
  #backoffMs = 0;
  #nextWriteAt = 0;
  readonly #brokenKeys = new Set<string>();

  constructor(
    private readonly log: Logger,
    /** The URL without its password. */
    private readonly endpoint: string,
    private readonly password: string | undefined,
    private readonly clock: Pick<Clock, 'now'>,
  ) {}

  get view(): HealthView {
    return { state: this.#state, reason: this.#reason, brokenKeys: [...this.#brokenKeys] };
  }

  get state(): RedisState {
    return this.#state;
  }

  /** A write may be tried now: always while Redis takes writes, once per back-off period while it refuses them. */
  writeAllowed(): boolean {
    return !this.#writesRefused || this.clock.now() >= this.#nextWriteAt;
  }

  /** The connection closed or failed (ioredis's close and error events). */
  connectionLost(reason: string): void {
    this.#enter('down', reason);
  }

  /** A command went through: a read ends an outage of the connection, only a write one of refused writes. */
  succeeded(kind: 'read' | 'write', keys: readonly string[] = []): void {
    for (const key of keys) this.#keyUsable(key);
    if (kind === 'write') {
      this.#writesRefused = false;
      this.#backoffMs = 0;
    }
    if (this.#writesRefused) {
      // Back after a drop while writes were refused: it still refuses them, as far as anyone knows.
      if (this.#state === 'down') this.#enter('refusing', this.#refusal);
      return;
    }
    this.#up();
  }

  /** A command failed; what it says of Redis. Keys of another type are reported by `keyBroken`. */
  failed(error: unknown, kind: 'read' | 'write'): Failure {
    const failure = classifyRedisError(error, kind);
    if (failure.kind === 'down') this.#enter('down', failure.reason);
    else if (failure.kind === 'refusing') {
      this.#refused(failure.reason);
      this.#enter('refusing', failure.reason);
    }
    return failure;
  }

  /** `key` holds another type than drain-init's: logged once, until an operation on it goes through. */
  keyBroken(key: string, type: string, expected: string, reason: string): void {
    if (this.#brokenKeys.has(key) || this.#brokenKeys.size >= MAX_BROKEN_KEYS) return;
    this.#brokenKeys.add(key);
    this.log.warn(
      { redis: this.endpoint, key, type, expected, reason: this.#scrub(reason) },
      `Redis key ${key} is a ${type}, not the ${expected} drain-init expects there: what uses it fails until it is deleted or mended; the rest works on`,
    );
  }

  #keyUsable(key: string): void {
    if (!this.#brokenKeys.delete(key)) return;
    this.log.info({ redis: this.endpoint, key }, `Redis key ${key} is usable again`);
  }

  #refused(reason: string): void {
    this.#writesRefused = true;
    this.#refusal = reason;
    this.#backoffMs = Math.min(Math.max(FIRST_WRITE_BACKOFF_MS, this.#backoffMs * 2), MAX_WRITE_BACKOFF_MS);
    this.#nextWriteAt = this.clock.now() + this.#backoffMs;
  }

  #enter(state: 'down' | 'refusing', reason: string): void {
    // /status shows the latest reason; the log line the first of each state.
    this.#reason = this.#scrub(reason);
    if (this.#state === state) return;
    this.#state = state;
    this.#outageStart ??= this.clock.now();
    if (this.#logged.has(state)) return;
    this.#logged.add(state);
    if (state === 'down')
      this.log.warn({ redis: this.endpoint, reason: this.#reason }, 'Redis unavailable; the worker runs on');
    else
      this.log.warn(
        { redis: this.endpoint, reason: this.#reason },
        `Redis refuses commands: its writes are tried again at most every ${MAX_WRITE_BACKOFF_MS / 1_000} s; the worker runs on`,
      );
  }

  #up(): void {
    const previous = this.#state;
    if (previous === 'up') return;
    this.#state = 'up';
    this.#reason = undefined;
    if (previous === 'connecting') this.log.info({ redis: this.endpoint }, 'connected to Redis');
    else {
      const outageMs = Math.round(this.clock.now() - (this.#outageStart ?? this.clock.now()));
      this.log.info({ redis: this.endpoint, outageMs }, 'Redis available again');
    }
    this.#outageStart = undefined;
    this.#logged.clear();
  }

  /** Redis and ioredis do not echo passwords; this keeps it so if one ever does. */
  #scrub(reason: string): string {
    return this.password === undefined ? reason : reason.replaceAll(this.password, '***');
  }
}
