// The Sidekiq side of drain-init's Redis endpoint: which of the worker's commands it watches and which it
// takes over. A fetch (BRPOP of Sidekiq's queues) becomes fetch.lua, which takes the job and records it in
// one atomic step; while every queue is empty the fetch waits for a queue to change (told by Redis, see
// redis/key-changes.ts), answering nil at the BRPOP's own timeout, as Redis would. Heartbeat writes are read
// on their way (beat-writes.ts) and handed on. Everything else passes through untouched.
import type { Cancel, Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { ThrottledWarnings } from '../log/throttle.js';
import type { KeyChanges } from '../redis/key-changes.js';
import type { LuaScript } from '../redis/lua-script.js';
import type { CapturePolicy } from '../redis/resp-commands.js';
import { encodeBulkArray, encodeNullArray } from '../redis/resp-encode.js';
import { RespError, type RespValue } from '../redis/resp-values.js';
import {
  ConnectionClosedError,
  type CommandSwap,
  type ConnectionInfo,
  type RelayedCommand,
  type RelayHooks,
  type TakeoverHandler,
  type TakeoverSession,
} from '../redis/relay-hooks.js';
import { BeatWriteReader, isBeatWrite, type BeatWrite } from './beat-writes.js';
import {
  FETCH_SCRIPT,
  FetchCommand,
  UNFETCH_SCRIPT,
  fetchCall,
  parseFetchReply,
  queueFetch,
  unfetchCall,
  type FetchTarget,
  type QueueFetch,
} from './fetch.js';
import type { SidekiqKeys } from './keys.js';

/** A BRPOP is captured whole: its keys are queue names. */
const FETCH_CAPTURE_BYTES = 64 * 1024;
/** A heartbeat's work hash write is read up to this size (every running job's payload); beyond, it is unreadable. */
const BEAT_CAPTURE_BYTES = 16 * 1024 * 1024;
/** Where Redis does not tell which queues change, a waiting fetch looks again this often. */
export const FETCH_POLL_MS = 100;
/** A fetch that never reached the worker is put back; while Redis does not take that, it is tried again this often. */
const UNFETCH_RETRY_MS = 1_000;
const WARNING_INTERVAL_MS = 600_000;

/** Where fetched jobs are recorded and what the worker's heartbeats say goes: the job guard. */
export interface FetchRecord {
  /** A fetch may be recorded now (the record holds nothing of a dead worker). */
  readonly recording: boolean;
  whenRecording(): Promise<void>;
  fetched(jid: string, process: string): void;
  beatWrite(write: BeatWrite): void;
  /** A worker connection closed: a process may have ended. */
  connectionClosed(): void;
}

export interface EndpointParts {
  readonly keys: SidekiqKeys;
  /** The record's keys and this drain-init's token; undefined until the instance id is claimed. */
  readonly target: () => FetchTarget | undefined;
  /** Undefined until the instance id is claimed, and with --recovery off. */
  readonly record: () => FetchRecord | undefined;
  /** The pid of the worker process that holds a connection's other end; undefined when it cannot be told. */
  readonly processOf: (connection: ConnectionInfo) => number | undefined;
  /** The hostname Sidekiq writes in its identities: a process is `host:pid`. */
  readonly hostname: string;
  readonly changes: KeyChanges;
  /** Runs a script on drain-init's own connection (the worker's may be gone): for putting a fetch back. */
  readonly runScript: (script: LuaScript, keys: readonly string[], args: readonly string[]) => Promise<unknown>;
  readonly clock: Clock;
  readonly log: Logger;
}

/** The relay hooks of a Sidekiq worker's endpoint. */
export function sidekiqEndpointHooks(
  parts: EndpointParts,
): RelayHooks & { readonly fetches: () => number; close(): void } {
  return new SidekiqEndpoint(parts);
}

/** What the endpoint keeps of one worker connection. */
interface WorkerConnection {
  readonly beats: BeatWriteReader;
  /** The Sidekiq process at its other end, `host:pid`; undefined when it cannot be told. */
  readonly process: string | undefined;
  /** Its last fetch's script command, for the next fetch of the same queues. */
  fetchCommand: FetchCommand | undefined;
}

class SidekiqEndpoint implements RelayHooks {
  readonly #connections = new Map<number, WorkerConnection>();
  readonly #warnings: ThrottledWarnings;
  /** Fetches to put back, by fetch id, and how many more times a put-back that finds nothing looks again. */
  readonly #toPutBack = new Map<string, { readonly target: FetchTarget; looksLeft: number; dueAt: number }>();
  #cancelRetry: Cancel | undefined;
  /** A round of put-backs is under way; `#putBackAgain`: one more round when it ends. */
  #puttingBack = false;
  #putBackAgain = false;
  #fetches = 0;
  #nextFetchId = 0;

  constructor(private readonly parts: EndpointParts) {
    this.#warnings = new ThrottledWarnings(parts.log, WARNING_INTERVAL_MS, parts.clock);
  }

  /** Jobs handed to the worker so far. */
  fetches(): number {
    return this.#fetches;
  }

  close(): void {
    this.#cancelRetry?.();
  }

  readonly capture: CapturePolicy = (name) => {
    if (name === 'BRPOP') return FETCH_CAPTURE_BYTES;
    if (name === 'DEL' || name === 'UNLINK' || name === 'HSET' || name === 'HMSET' || name === 'SREM') {
      return {
        firstArgument: (first) => (isBeatWrite(this.parts.keys, name, first.toString()) ? BEAT_CAPTURE_BYTES : 0),
      };
    }
    return 0;
  };

  readonly observe = (command: RelayedCommand): void => {
    // While the connection is surely there: its process is needed at a fetch, when the worker may be gone.
    const { beats } = this.#connection(command.connection);
    if (!beats.wants(command.name)) return;
    const writes = beats.command({
      name: command.name,
      firstArgument: (command.firstArgument ?? command.args?.[0])?.toString(),
      args: command.args,
    });
    this.#hand(writes);
  };

  readonly takeover = (command: RelayedCommand): TakeoverHandler | CommandSwap | undefined => {
    const fetch = command.args === undefined ? undefined : queueFetch(command.name, command.args, this.parts.keys);
    if (fetch === undefined) return undefined;
    return this.#fetchSwap(command.connection, fetch) ?? ((session) => this.#fetch(session, fetch));
  };

  readonly closed = (info: ConnectionInfo): void => {
    const connection = this.#connections.get(info.id);
    this.#connections.delete(info.id);
    if (connection !== undefined) this.#hand(connection.beats.end());
    this.parts.record()?.connectionClosed();
  };

  #connection(info: ConnectionInfo): WorkerConnection {
    let connection = this.#connections.get(info.id);
    if (connection === undefined) {
      const pid = this.parts.processOf(info);
      connection = {
        beats: new BeatWriteReader(this.parts.keys),
        process: pid === undefined ? undefined : `${this.parts.hostname}:${pid}`,
        fetchCommand: undefined,
      };
      this.#connections.set(info.id, connection);
    }
    return connection;
  }

  #hand(writes: readonly BeatWrite[]): void {
    const record = this.parts.record();
    for (const write of writes) {
      if (write.kind === 'unreadable')
        this.#warnings.warn(
          'unreadable beat',
          { identity: write.identity, reason: write.reason },
          'a heartbeat of the worker could not be read: it tells nothing of which jobs finished',
        );
      record?.beatWrite(write);
    }
  }

  /**
   * A fetch that can be recorded now starts as a swap: fetch.lua goes to Redis in the BRPOP's place at once, and
   * a job it took is the worker's reply with no promise on the way (the path of every job of a busy queue).
   * Anything else (an empty queue, an error) goes on in #fetch.
   */
  #fetchSwap(info: ConnectionInfo, fetch: QueueFetch): CommandSwap | undefined {
    const connection = this.#connection(info);
    const { process } = connection;
    const target = this.parts.target();
    const record = this.parts.record();
    if (process === undefined || target === undefined || record === undefined || !record.recording) return undefined;
    const deadline = this.parts.clock.now() + fetch.timeoutMs;
    const fetchId = this.#fetchId(target, info);
    if (connection.fetchCommand?.fits(fetch, target) !== true)
      connection.fetchCommand = new FetchCommand(fetch, target, process);
    let jid = '';
    return {
      send: connection.fetchCommand.encode(fetchId),
      answer: (reply) => {
        // The script may still be on its way to Redis, and run after a first look for its job.
        if (reply instanceof ConnectionClosedError) this.#putBack(target, fetchId, 2);
        const fetched = reply instanceof Error ? undefined : parseFetchReply(reply);
        if (fetched?.kind !== 'job') return (session) => this.#fetch(session, fetch, { deadline, reply });
        jid = fetched.jid;
        return encodeBulkArray([fetched.queueKey, fetched.job]);
      },
      settled: (outcome) => {
        if (outcome !== 'flushed') return this.#putBack(target, fetchId, 1);
        this.#fetches++;
        record.fetched(jid, process);
      },
    };
  }

  /**
   * One fetch: the script until it takes a job, waiting for a queue to change between runs, nil at the
   * BRPOP's timeout. A fetch that cannot be recorded (no record yet, a broken key, another owner) waits or
   * goes through as the worker sent it: the worker never stops for drain-init.
   */
  async #fetch(
    session: TakeoverSession,
    fetch: QueueFetch,
    swapped?: { readonly deadline: number; readonly reply: RespValue | Error },
  ): Promise<void> {
    const { clock } = this.parts;
    const deadline = swapped?.deadline ?? clock.now() + fetch.timeoutMs;
    const { process } = this.#connection(session.connection);
    if (process === undefined) {
      this.#warnings.warn(
        'owner',
        {},
        'a fetch on a Redis connection whose process cannot be told (/proc/net/tcp): it goes through unrecorded',
      );
      session.forward();
      return;
    }
    // The swap's reply to its script, where it was not a job: the first run's.
    for (let first = swapped?.reply; ; first = undefined) {
      const target = this.parts.target();
      const record = this.parts.record();
      if (target === undefined || record === undefined || !record.recording) {
        const ready = record?.whenRecording() ?? new Promise<void>(() => {});
        if ((await this.#until(ready, deadline, session.signal)) !== 'ready') return this.#empty(session);
        continue;
      }
      const fetchId = this.#fetchId(target, session.connection);
      const call = fetchCall(fetch, target, process, fetchId);
      let reply: RespValue;
      try {
        reply = await this.#run(session, FETCH_SCRIPT, call.keys, call.args, first);
      } catch (error) {
        // The script may still be on its way to Redis, and run after a first look for its job.
        if (session.signal.aborted) this.#putBack(target, fetchId, 2);
        else this.#passThrough(session, `the fetch script failed: ${(error as Error).message}`);
        return;
      }
      const fetched = parseFetchReply(reply);
      if (fetched.kind === 'job') {
        const outcome = await session.reply(encodeBulkArray([fetched.queueKey, fetched.job]));
        if (outcome === 'flushed') {
          this.#fetches++;
          record.fetched(fetched.jid, process);
        } else this.#putBack(target, fetchId, 1);
        return;
      }
      if (fetched.kind !== 'empty') {
        const why =
          fetched.kind === 'broken'
            ? `the key ${fetched.key} has the type ${fetched.type}`
            : `another drain-init owns ${fetched.key}`;
        this.#passThrough(session, why);
        return;
      }
      const remaining = deadline - clock.now();
      if (remaining <= 0) return this.#empty(session);
      const live = this.parts.changes.live;
      const waited = await this.parts.changes.wait(
        fetch.queueKeys,
        live ? remaining : Math.min(remaining, FETCH_POLL_MS),
        session.signal,
      );
      if (waited === 'aborted') return;
      // Told of every change, a wait that timed out saw none: the queues are still empty, as at the last run.
      if (waited === 'timeout' && live) return this.#empty(session);
    }
  }

  #fetchId(target: FetchTarget, connection: ConnectionInfo): string {
    return `${target.token}:${connection.id}:${++this.#nextFetchId}`;
  }

  /** EVALSHA (unless its reply is `sent` already), and the whole script when Redis does not hold it yet. */
  async #run(
    session: TakeoverSession,
    script: LuaScript,
    keys: readonly string[],
    args: readonly string[],
    sent?: RespValue | Error,
  ): Promise<RespValue> {
    try {
      if (sent instanceof Error) throw sent;
      return sent !== undefined ? sent : await session.send(script.command(keys, args));
    } catch (error) {
      if (!(error instanceof RespError) || !error.message.startsWith('NOSCRIPT')) throw error;
      return session.send(script.command(keys, args, true));
    }
  }

  async #empty(session: TakeoverSession): Promise<void> {
    if (!session.signal.aborted) await session.reply((protocol) => encodeNullArray(protocol));
  }

  #passThrough(session: TakeoverSession, why: string): void {
    this.#warnings.warn(
      why,
      { reason: why },
      'a fetch could not be recorded and went to Redis as the worker sent it: a job it takes is lost if the worker is killed',
    );
    if (!session.signal.aborted) session.forward();
  }

  /** Resolves 'ready' when `ready` does, 'timeout' at the deadline, 'aborted' when the worker or Redis goes. */
  #until(ready: Promise<void>, deadline: number, signal: AbortSignal): Promise<'ready' | 'timeout' | 'aborted'> {
    if (signal.aborted) return Promise.resolve('aborted');
    const { clock } = this.parts;
    return new Promise((resolve) => {
      const finish = (outcome: 'ready' | 'timeout' | 'aborted'): void => {
        cancel();
        signal.removeEventListener('abort', aborted);
        resolve(outcome);
      };
      const aborted = (): void => finish('aborted');
      const cancel = clock.schedule(Math.max(0, deadline - clock.now()), () => finish('timeout'));
      signal.addEventListener('abort', aborted, { once: true });
      void ready.then(() => finish('ready'));
    });
  }

  /**
   * The job of a fetch that never reached the worker goes back to its queue; tried again while Redis does not
   * take it, and looked for `looks` times, UNFETCH_RETRY_MS apart, while it is not found.
   */
  #putBack(target: FetchTarget, fetchId: string, looks: number): void {
    this.#toPutBack.set(fetchId, { target, looksLeft: looks, dueAt: this.parts.clock.now() });
    void this.#putBackAll();
  }

  /** One round at a time, so that a look is never counted twice. */
  async #putBackAll(): Promise<void> {
    if (this.#puttingBack) {
      this.#putBackAgain = true;
      return;
    }
    this.#puttingBack = true;
    do {
      this.#putBackAgain = false;
      await this.#putBackRound();
    } while (this.#putBackAgain);
    this.#puttingBack = false;
    this.#cancelRetry?.();
    this.#cancelRetry =
      this.#toPutBack.size === 0
        ? undefined
        : this.parts.clock.schedule(UNFETCH_RETRY_MS, () => void this.#putBackAll());
  }

  async #putBackRound(): Promise<void> {
    for (const [fetchId, putBack] of [...this.#toPutBack]) {
      if (putBack.dueAt > this.parts.clock.now()) continue;
      const call = unfetchCall(putBack.target, fetchId);
      try {
        const jid: unknown = await this.parts.runScript(UNFETCH_SCRIPT, call.keys, call.args);
        if (jid === null && --putBack.looksLeft > 0) {
          putBack.dueAt = this.parts.clock.now() + UNFETCH_RETRY_MS;
          continue;
        }
        this.#toPutBack.delete(fetchId);
        if (jid !== null)
          this.parts.log.info(
            { jid: String(jid) },
            'a fetched job never reached the worker (its connection closed): put back at the front of its queue',
          );
      } catch {
        // Redis does not answer now: the next round.
      }
    }
  }
}
