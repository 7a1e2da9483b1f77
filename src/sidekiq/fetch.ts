// Sidekiq's fetch as the worker sends it through drain-init's Redis endpoint, and the reliable fetch that
// takes its place (fetch.lua): which BRPOPs are fetches, the script's arguments and command, and its reply. No I/O.
import { LuaScript } from '../redis/lua-script.js';
import { appendBulks, encodeBulkArrayHead } from '../redis/resp-encode.js';
import type { SidekiqKeys } from './keys.js';
import fetchSource from './fetch.lua';
import unfetchSource from './unfetch.lua';

export const FETCH_SCRIPT = new LuaScript(fetchSource);
export const UNFETCH_SCRIPT = new LuaScript(unfetchSource);

/** A BRPOP whose keys are all Sidekiq queues: BasicFetch's, every version (`BRPOP queue:a queue:b 2`). */
export interface QueueFetch {
  readonly queueKeys: readonly string[];
  /** The BRPOP's timeout; Infinity for 0 (wait for ever). */
  readonly timeoutMs: number;
}

/** The fetch a BRPOP is, or undefined when it is any other command (it then passes through unchanged). */
export function queueFetch(name: string, args: readonly Buffer[], keys: SidekiqKeys): QueueFetch | undefined {
  if (name !== 'BRPOP' || args.length < 2) return undefined;
  const queueKeys = args.slice(0, -1).map((arg) => arg.toString());
  const queuePrefix = keys.queue('');
  if (!queueKeys.every((key) => key.startsWith(queuePrefix) && key.length > queuePrefix.length)) return undefined;
  const timeoutText = args.at(-1)?.toString() ?? '';
  if (!/^\d+(\.\d+)?$/.test(timeoutText)) return undefined;
  const timeoutS = Number(timeoutText);
  return { queueKeys, timeoutMs: timeoutS === 0 ? Number.POSITIVE_INFINITY : Math.round(timeoutS * 1000) };
}

export interface FetchTarget {
  /** The job record of this instance, the index of records, and the instance record (its owner). */
  readonly record: string;
  readonly index: string;
  readonly instance: string;
  readonly instanceId: string;
  /** This drain-init's owner token. */
  readonly token: string;
  readonly sidekiq: SidekiqKeys;
}

/**
 * The script's keys and arguments for one fetch by `process` (`host:pid`), known later by `fetchId`: the last
 * argument, as FetchCommand relies on.
 */
export function fetchCall(
  fetch: QueueFetch,
  target: FetchTarget,
  process: string,
  fetchId: string,
): { keys: string[]; args: string[] } {
  return {
    keys: [...fetch.queueKeys, target.record, target.index, target.instance],
    args: [target.sidekiq.queue(''), process, target.instanceId, target.token, fetchId],
  };
}

/**
 * The fetch script's EVALSHA for one worker connection, encoded once but for its last argument, the fetch id: the
 * only part that changes from one fetch to the next while the worker's BRPOP stays the same.
 */
export class FetchCommand {
  readonly #head: Buffer;

  constructor(
    readonly fetch: QueueFetch,
    readonly target: FetchTarget,
    process: string,
  ) {
    const call = fetchCall(fetch, target, process, '');
    const items = FETCH_SCRIPT.command(call.keys, call.args);
    this.#head = encodeBulkArrayHead(items.length, items.slice(0, -1));
  }

  /** Whether this is the command of `fetch` (the same queues) for `target`; a connection's process never changes. */
  fits(fetch: QueueFetch, target: FetchTarget): boolean {
    const { queueKeys } = this.fetch;
    return (
      target === this.target &&
      fetch.queueKeys.length === queueKeys.length &&
      fetch.queueKeys.every((key, index) => key === queueKeys[index])
    );
  }

  /** The command's bytes for the fetch `fetchId`. */
  encode(fetchId: string): Buffer {
    return appendBulks(this.#head, [fetchId]);
  }
}

/** unfetch.lua's keys and arguments: the job of fetch `fetchId` back to its queue. */
export function unfetchCall(target: FetchTarget, fetchId: string): { keys: string[]; args: string[] } {
  return { keys: [target.record], args: [fetchId, target.sidekiq.queue('')] };
}

export type FetchReply =
  | { readonly kind: 'job'; readonly queueKey: Buffer; readonly job: Buffer; readonly jid: string }
  | { readonly kind: 'empty' }
  /** A key of drain-init's has another type: nothing was taken. */
  | { readonly kind: 'broken'; readonly key: string; readonly type: string }
  /** Another drain-init owns the record now: nothing was taken. */
  | { readonly kind: 'not-owner'; readonly key: string; readonly owner: string };

/** The script's reply, with its strings as Buffers (a job is bytes, passed on as they are). */
export function parseFetchReply(reply: unknown): FetchReply {
  if (reply === null) return { kind: 'empty' };
  if (Array.isArray(reply) && reply.length === 3 && reply.every((item) => Buffer.isBuffer(item))) {
    const [first, second, third] = reply as [Buffer, Buffer, Buffer];
    const mark = first.toString();
    if (mark === 'broken') return { kind: 'broken', key: second.toString(), type: third.toString() };
    if (mark === 'not-owner') return { kind: 'not-owner', key: second.toString(), owner: third.toString() };
    return { kind: 'job', queueKey: first, job: second, jid: third.toString() };
  }
  throw new Error('the fetch script answered in an unknown shape');
}
