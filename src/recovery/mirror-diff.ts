// What the job record should hold after a read of the worker's work hash, and the change that gets it
// there, without I/O.
import type { InFlightJob } from '../sidekiq/parse.js';

export interface MirroredJob {
  /** The Sidekiq process that ran the job. */
  readonly identity: string;
  /** The record's value: JSON {identity, queue, payload}, payload as Sidekiq would RPUSH it. */
  readonly value: string;
}

/** By jid. */
export type Mirror = ReadonlyMap<string, MirroredJob>;

export interface WorkRead {
  /** The supervised Sidekiq processes whose work hash this read saw. */
  readonly identities: readonly string[];
  /** Their jobs. */
  readonly jobs: readonly InFlightJob[];
}

export interface MirrorChange {
  /** jid to value: the entries to HSET. */
  readonly set: ReadonlyMap<string, string>;
  /** The jids to HDEL. */
  readonly removed: readonly string[];
  readonly next: Mirror;
}

/** Only jobs of these queues are mirrored; undefined mirrors every queue. */
export type QueueFilter = ReadonlySet<string> | undefined;

export function mirroredValue(job: InFlightJob): string {
  return JSON.stringify({ identity: job.identity, queue: job.queue, payload: job.payload });
}

/**
 * A job leaves the record only when its process was read and no longer runs it. The jobs of a process
 * missing from the read (killed, expired, not matched during a race with its exit) stay for recovery.
 */
export function mirrorChange(previous: Mirror, read: WorkRead, queues: QueueFilter): MirrorChange {
  const seen = new Set(read.identities);
  const next = new Map<string, MirroredJob>();
  for (const [jid, job] of previous) if (!seen.has(job.identity)) next.set(jid, job);
  for (const job of read.jobs) {
    if (seen.has(job.identity) && (queues === undefined || queues.has(job.queue)))
      next.set(job.jid, { identity: job.identity, value: mirroredValue(job) });
  }
  const set = new Map<string, string>();
  for (const [jid, job] of next) if (previous.get(jid)?.value !== job.value) set.set(jid, job.value);
  const removed = [...previous.keys()].filter((jid) => !next.has(jid));
  return { set, removed, next };
}

/** Every entry, for a write after Redis may have lost the record. */
export function wholeMirror(mirror: Mirror): ReadonlyMap<string, string> {
  return new Map([...mirror].map(([jid, job]) => [jid, job.value]));
}
