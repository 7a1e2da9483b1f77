// What a Sidekiq worker writes about itself, read from the commands it sends through drain-init's Redis
// endpoint: each heartbeat rewrites its work hash (`DEL`/`UNLINK <identity>:work(ers)`, an `HSET` per busy
// thread, `EXPIRE`), and a clean stop removes it from `processes` (`SREM processes <identity>`). No I/O:
// the endpoint hands each command of one connection to a BeatWriteReader, in order.
import type { SidekiqKeys } from './keys.js';
import { parseWork } from './parse.js';

export type BeatWrite =
  /** A heartbeat's whole list of the jobs `identity` runs. */
  | { readonly kind: 'work'; readonly identity: string; readonly jids: ReadonlySet<string> }
  /** A heartbeat that could not be read whole: it tells nothing about which jobs finished. */
  | { readonly kind: 'unreadable'; readonly identity: string; readonly reason: string }
  /** A clean stop: the process took itself out of `processes` after requeueing what it still ran. */
  | { readonly kind: 'stopped'; readonly identity: string };

/** A command as the endpoint saw it. */
export interface SeenCommand {
  /** Upper-cased. */
  readonly name: string;
  /** Its first argument (a key, mostly), when it has one. */
  readonly firstArgument: string | undefined;
  /** Every argument, the first included; undefined when not captured (not asked for, or too large). */
  readonly args: readonly Buffer[] | undefined;
}

interface PendingBeat {
  readonly identity: string;
  readonly key: string;
  readonly fields: Record<string, string>;
  /** Why the beat cannot be read whole, once something of it was missed. */
  unreadable?: string;
}

const WORK_SUFFIXES = [':work', ':workers'];

/** Reads the heartbeat writes of one connection. */
export class BeatWriteReader {
  #pending: PendingBeat | undefined;

  constructor(private readonly keys: SidekiqKeys) {}

  /**
   * Whether a command named `name` can matter to the reader now: one that may start a beat or a stop, or any
   * while a beat is under way (the next command ends it). The others need not be handed over.
   */
  wants(name: string): boolean {
    return this.#pending !== undefined || name === 'DEL' || name === 'UNLINK' || name === 'SREM';
  }

  /** The next command of the connection; returns what it completed. */
  command(command: SeenCommand): BeatWrite[] {
    const { name, args, firstArgument: key } = command;
    const pending = this.#pending;
    if (pending !== undefined && (name === 'HSET' || name === 'HMSET') && key === pending.key) {
      this.#addFields(pending, args);
      return [];
    }
    const done = pending === undefined ? [] : [this.#finish(pending)];
    this.#pending = undefined;
    if ((name === 'DEL' || name === 'UNLINK') && args !== undefined && args.length === 1 && key !== undefined) {
      const identity = this.#identityOf(key);
      if (identity !== undefined) this.#pending = { identity, key, fields: {} };
    } else if (name === 'SREM' && args !== undefined && key === this.keys.processes) {
      for (const member of args.slice(1)) done.push({ kind: 'stopped', identity: member.toString() });
    }
    return done;
  }

  /** The connection closed: a beat under way ends with it. */
  end(): BeatWrite[] {
    const pending = this.#pending;
    this.#pending = undefined;
    return pending === undefined ? [] : [this.#finish(pending)];
  }

  #addFields(pending: PendingBeat, args: readonly Buffer[] | undefined): void {
    if (args === undefined) {
      pending.unreadable = 'a work hash write too large to read';
      return;
    }
    if (args.length % 2 !== 1) {
      pending.unreadable = 'an HSET with an odd number of arguments';
      return;
    }
    for (let index = 1; index < args.length; index += 2) {
      pending.fields[args[index]?.toString() ?? ''] = args[index + 1]?.toString() ?? '';
    }
  }

  #finish(pending: PendingBeat): BeatWrite {
    const { identity } = pending;
    if (pending.unreadable !== undefined) return { kind: 'unreadable', identity, reason: pending.unreadable };
    const work = parseWork(identity, pending.fields);
    if (work.warnings.length > 0) return { kind: 'unreadable', identity, reason: work.warnings[0] ?? '' };
    return { kind: 'work', identity, jids: new Set(work.value.map((job) => job.jid)) };
  }

  #identityOf(key: string): string | undefined {
    return workHashIdentity(this.keys, key);
  }
}

/** Whether the endpoint must capture a command to read the heartbeat writes: it knows the name and first argument. */
export function isBeatWrite(keys: SidekiqKeys, name: string, firstArgument: string | undefined): boolean {
  if (name === 'SREM') return firstArgument === keys.processes;
  if (name === 'DEL' || name === 'UNLINK' || name === 'HSET' || name === 'HMSET') {
    return firstArgument !== undefined && workHashIdentity(keys, firstArgument) !== undefined;
  }
  return false;
}

/** The identity of a work hash key `<prefix><identity>:work(ers)`. */
function workHashIdentity(keys: SidekiqKeys, key: string): string | undefined {
  if (!key.startsWith(keys.prefix)) return undefined;
  const suffix = WORK_SUFFIXES.find((ending) => key.endsWith(ending));
  if (suffix === undefined) return undefined;
  const identity = key.slice(keys.prefix.length, -suffix.length);
  return /^[^:\s]+:\d+:[^:\s]+$/.test(identity) ? identity : undefined;
}
