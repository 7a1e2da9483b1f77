// Which keys changed, told by Redis itself: CLIENT TRACKING on a RESP3 connection of its own. A wait reads
// its keys there (one EXISTS), and Redis then sends one invalidation at the next write to any of them,
// whoever wrote it, in the same event-loop turn: a wait for a queue to get a job ends within a millisecond
// of the push. Keys nobody waits for cost nothing: a worker draining a long queue, whose fetches never wait,
// is not followed by a notice per job. Where tracking is refused (an ACL, an old Redis) or the connection is
// down, `live` is false and callers look again at a short interval.
import type { Socket } from 'node:net';
import type { Cancel, Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { reconnectDelay } from './connection.js';
import { encodeBulkArray } from './resp-encode.js';
import { ReplyScanner } from './resp-replies.js';
import { decodeReply, RespError, type RespValue } from './resp-values.js';
import { connectRedisSocket } from './socket.js';
import type { RedisEndpoint } from './url.js';

export type WaitOutcome = 'changed' | 'timeout' | 'aborted';

export interface KeyChanges {
  /** Tracking works now: a wait ends at the change. */
  readonly live: boolean;
  /**
   * Resolves when one of `keys` changes or holds a value when the wait begins ('changed'), after `ms`
   * ('timeout'), or when `signal` aborts.
   */
  wait(keys: readonly string[], ms: number, signal: AbortSignal): Promise<WaitOutcome>;
  close(): void;
}

interface Waiter {
  readonly keys: ReadonlySet<string>;
  readonly done: (outcome: WaitOutcome) => void;
}

export function watchKeys(endpoint: RedisEndpoint, connectionName: string, clock: Clock, log: Logger): KeyChanges {
  return new TrackingConnection(endpoint, connectionName, clock, log);
}

class TrackingConnection implements KeyChanges {
  readonly #waiters = new Set<Waiter>();
  #socket: Socket | undefined;
  /** What each reply owed on the connection is for: a setup step, or the first read of a waiter's keys. */
  #owed: ((value: RespValue) => void)[] = [];
  #live = false;
  #closed = false;
  #attempt = 0;
  /** Tracking was refused: it is not asked for again (one warning). */
  #refused = false;
  #cancelReconnect: Cancel = () => {};

  constructor(
    private readonly endpoint: RedisEndpoint,
    private readonly connectionName: string,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.#connect();
  }

  get live(): boolean {
    return this.#live;
  }

  wait(keys: readonly string[], ms: number, signal: AbortSignal): Promise<WaitOutcome> {
    if (signal.aborted) return Promise.resolve('aborted');
    return new Promise((resolve) => {
      const waiter: Waiter = {
        keys: new Set(keys),
        done: (outcome) => {
          if (!this.#waiters.delete(waiter)) return;
          cancel();
          signal.removeEventListener('abort', aborted);
          resolve(outcome);
        },
      };
      const aborted = (): void => waiter.done('aborted');
      const cancel = this.clock.schedule(ms, () => waiter.done('timeout'));
      signal.addEventListener('abort', aborted, { once: true });
      this.#waiters.add(waiter);
      // The read makes Redis tell of the next write to these keys; a value already there ends the wait.
      if (this.#live)
        this.#send(['EXISTS', ...keys], (value) => {
          if (value instanceof RespError) this.#refuse(value.message);
          else if (typeof value === 'number' && value > 0) waiter.done('changed');
        });
    });
  }

  close(): void {
    this.#closed = true;
    this.#cancelReconnect();
    this.#socket?.destroy();
    for (const waiter of [...this.#waiters]) waiter.done('aborted');
  }

  #connect(): void {
    if (this.#closed || this.#refused) return;
    const socket = connectRedisSocket(this.endpoint);
    this.#socket = socket;
    const scanner = new ReplyScanner();
    let held: Buffer = Buffer.alloc(0);
    this.#owed = [];
    socket.on('connect', () => this.#setup());
    socket.on('data', (chunk: Buffer) => {
      // The scanner keeps its place across chunks; the bytes of a frame begun in an earlier chunk are kept here.
      let start = 0;
      try {
        scanner.feed(chunk, (end, kind) => {
          const part = chunk.subarray(start, end);
          const frame = held.length === 0 ? part : Buffer.concat([held, part]);
          held = Buffer.alloc(0);
          start = end;
          const value = decodeReply(frame);
          if (kind === 'push') this.#push(value);
          else this.#owed.shift()?.(value);
          return false;
        });
      } catch (error) {
        this.log.warn(
          { err: (error as Error).message },
          'key-change tracking: unreadable reply from Redis; reconnecting',
        );
        socket.destroy();
        return;
      }
      const rest = chunk.subarray(start);
      held = held.length === 0 ? rest : Buffer.concat([held, rest]);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.#live = false;
      // Whoever waits looks again now: a change during the outage would go unseen.
      for (const waiter of [...this.#waiters]) waiter.done('changed');
      if (this.#closed || this.#refused) return;
      this.#cancelReconnect = this.clock.schedule(reconnectDelay(++this.#attempt), () => this.#connect());
    });
  }

  #send(command: readonly string[], onReply: (value: RespValue) => void): void {
    this.#owed.push(onReply);
    this.#socket?.write(encodeBulkArray(command));
  }

  /** HELLO 3 (with the credentials and name), then tracking of the keys this connection reads. */
  #setup(): void {
    const { username, password } = this.endpoint;
    const auth = password === undefined ? [] : ['AUTH', username ?? 'default', password];
    const refusedOr = (then: () => void) => (value: RespValue) => {
      if (value instanceof RespError) this.#refuse(value.message);
      else then();
    };
    this.#send(
      ['HELLO', '3', ...auth, 'SETNAME', this.connectionName],
      refusedOr(() => {}),
    );
    this.#send(
      ['CLIENT', 'TRACKING', 'ON'],
      refusedOr(() => {
        this.#live = true;
        this.#attempt = 0;
      }),
    );
  }

  #refuse(reason: string): void {
    if (this.#refused) return;
    this.#refused = true;
    this.#live = false;
    this.#socket?.destroy();
    this.log.warn(
      { reason },
      'Redis refused to tell which queues change (CLIENT TRACKING): a waiting fetch looks again every 100 ms instead',
    );
  }

  /** `['invalidate', [key, ...]]`, or `['invalidate', null]` when everything was flushed. */
  #push(value: RespValue): void {
    if (!Array.isArray(value) || !isText(value[0], 'invalidate')) return;
    const keys = value[1];
    const changed = Array.isArray(keys) ? new Set(keys.map((key) => String(key))) : undefined;
    for (const waiter of [...this.#waiters]) {
      if (changed === undefined || [...waiter.keys].some((key) => changed.has(key))) waiter.done('changed');
    }
  }
}

function isText(value: RespValue | undefined, text: string): boolean {
  return Buffer.isBuffer(value) && value.toString() === text;
}
