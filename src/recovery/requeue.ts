// The requeue script's arguments and reply; the script itself is requeue.lua.
import type { Redis } from 'ioredis';
import { LuaScript } from '../redis/lua-script.js';
import { isAlive } from '../sidekiq/match.js';
import type { SidekiqProcess, SidekiqSnapshot } from '../sidekiq/parse.js';
import type { SidekiqKeys } from '../sidekiq/keys.js';
import type { RecoveryKeys } from './keys.js';
import requeueSource from './requeue.lua';

const requeueScript = new LuaScript(requeueSource);
/** A record entry longer than this is no Sidekiq job drain-init puts back: 1 MB, the cap on what it reads of any job. */
export const MAX_JOB_BYTES = 1_048_576;

export const JOB_OUTCOMES = ['requeued', 'running', 'queued', 'malformed', 'failed', 'held', 'poison'] as const;
/**
 * requeued: pushed back to the fetch end of its queue; running: in the work hash of another live
 * process; queued: already back in its queue (Sidekiq requeued it); malformed: never recoverable;
 * failed: Redis refused it (a queue key of another type), kept in the record for a later run; held: one
 * death short of poison, kept in the record, marked, for the caller to release alone (quarantine.ts); poison:
 * its workers died too often while it ran, kept in the record for the caller to bury in the Dead set.
 */
export type JobOutcome = (typeof JOB_OUTCOMES)[number];

export interface JobResult {
  readonly jid: string;
  readonly outcome: JobOutcome;
  /** The queue; for malformed what is wrong with the entry, for failed Redis's error. */
  readonly detail: string;
  /** Worker deaths while it ran, within the window, this one included; undefined when none was counted. */
  readonly deaths: number | undefined;
}

export type RequeueReply =
  | { readonly kind: 'recovered'; readonly jobs: readonly JobResult[] }
  | { readonly kind: 'not-held' }
  | { readonly kind: 'alive' };

/** A job in the work hash of a live Sidekiq process. */
export interface RunningJob {
  readonly jid: string;
  readonly identity: string;
}

export interface RequeueRequest {
  readonly keys: RecoveryKeys;
  readonly instanceId: string;
  /** The lock token: the script does nothing unless the lock still holds it. */
  readonly token: string;
  /** Do nothing while the instance's heartbeat record exists (a peer's record); false for this instance's own. */
  readonly onlyIfExpired: boolean;
  readonly sidekiq: SidekiqKeys;
  /** `host:pid`: recover only the jobs this process ran; undefined for every job of the record. */
  readonly process?: string | undefined;
  readonly poison: PoisonRule;
  /** Hold the jobs one death short of poison (the record's owner runs on and releases them), else requeue them. */
  readonly holdSuspects: boolean;
  readonly running: readonly RunningJob[];
}

/** A job whose workers died this many times within the window goes to the Dead set; 0: never. */
export interface PoisonRule {
  readonly maxDeaths: number;
  readonly windowMs: number;
}

export async function requeueRecord(redis: Redis, request: RequeueRequest): Promise<RequeueReply> {
  const { keys } = request;
  const args = [
    request.token,
    request.instanceId,
    request.onlyIfExpired ? '1' : '0',
    request.sidekiq.prefix,
    request.process ?? '',
    String(request.poison.maxDeaths),
    String(request.poison.windowMs),
    request.holdSuspects ? '1' : '0',
    String(MAX_JOB_BYTES),
    ...request.running.flatMap((job) => [job.jid, job.identity]),
  ];
  const scriptKeys = [keys.jobs, keys.lock, keys.instance, keys.index, keys.deaths];
  return parseRequeueReply(await requeueScript.run(redis, scriptKeys, args));
}

/**
 * This host's Sidekiq processes as drain-init sees them now. Any other identity of this host is a ghost,
 * however fresh its heartbeat: a worker killed moments ago, whose pid a restarted worker may even reuse.
 */
export interface LocalHost {
  readonly hostname: string;
  readonly liveIdentities: ReadonlySet<string>;
}

/** The jobs of the processes whose heartbeat is fresh; a SIGKILLed process's work hash outlives it by 60 s. */
export function runningJobs(snapshot: SidekiqSnapshot, nowEpochS: number, host?: LocalHost): RunningJob[] {
  const ghost = (process: SidekiqProcess): boolean =>
    host !== undefined && process.hostname === host.hostname && !host.liveIdentities.has(process.identity);
  const alive = new Set(
    snapshot.processes
      .filter((process) => isAlive(process, nowEpochS) && !ghost(process))
      .map((process) => process.identity),
  );
  return snapshot.jobs.filter((job) => alive.has(job.identity)).map(({ jid, identity }) => ({ jid, identity }));
}

export function parseRequeueReply(reply: unknown): RequeueReply {
  if (!Array.isArray(reply) || !reply.every((item): item is string => typeof item === 'string')) {
    throw new Error(`unexpected requeue reply ${JSON.stringify(reply)}`);
  }
  const [status, ...rest] = reply;
  if ((status === 'not-held' || status === 'alive') && rest.length === 0) return { kind: status };
  if (status !== 'recovered' || rest.length % 4 !== 0)
    throw new Error(`unexpected requeue reply ${JSON.stringify(reply)}`);
  const jobs: JobResult[] = [];
  for (let index = 0; index < rest.length; index += 4) {
    const [jid = '', outcome, detail = '', deaths = ''] = rest.slice(index, index + 4);
    const known = JOB_OUTCOMES.find((name) => name === outcome);
    if (known === undefined) throw new Error(`unexpected requeue outcome ${JSON.stringify(outcome)}`);
    jobs.push({ jid, outcome: known, detail, deaths: /^\d+$/.test(deaths) ? Number(deaths) : undefined });
  }
  return { kind: 'recovered', jobs };
}

export function countOutcomes(jobs: readonly JobResult[]): Record<JobOutcome, number> {
  const counts: Record<JobOutcome, number> = {
    requeued: 0,
    running: 0,
    queued: 0,
    malformed: 0,
    failed: 0,
    held: 0,
    poison: 0,
  };
  for (const job of jobs) counts[job.outcome]++;
  return counts;
}
