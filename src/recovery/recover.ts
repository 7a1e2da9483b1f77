// Recovers the jobs of a job record whose worker died: this instance's own (its worker died, or the
// instance restarted after a kill), or a dead peer's, found through the index without KEYS or SCAN. A job
// whose workers died too often goes to Sidekiq's Dead set instead of its queue.
import type { Redis } from 'ioredis';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { listsConnection } from '../record/claim.js';
import type { CommandUse, RedisConnection } from '../redis/connection.js';
import { classifyRedisError } from '../redis/health.js';
import { keysExist } from '../redis/exists.js';
import { LuaScript } from '../redis/lua-script.js';
import type { SidekiqKeys } from '../sidekiq/keys.js';
import { readSidekiq } from '../sidekiq/reader.js';
import burySource from './bury.lua';
import releaseSource from './release.lua';
import trimDeathsSource from './trim-deaths.lua';
import { deadJobEntry } from './dead-job.js';
import { recoveryKeys, type RecoveryKeys } from './keys.js';
import { acquireLock, releaseLock } from './lock.js';
import { findSuperFetch } from './pro.js';
import {
  countOutcomes,
  requeueRecord,
  runningJobs,
  type JobResult,
  type LocalHost,
  type PoisonRule,
} from './requeue.js';

/** Covers the reads between taking the lock and running the requeue script, with room to spare. */
const LOCK_TTL_MS = 30_000;
/** Sidekiq's own trimming of the Dead set (dead_max_jobs, dead_timeout_in_seconds). */
const DEAD_MAX_JOBS = 10_000;
const DEAD_TIMEOUT_S = 180 * 24 * 3600;
const BURY_SCRIPT = new LuaScript(burySource);
const RELEASE_SCRIPT = new LuaScript(releaseSource);
const TRIM_DEATHS_SCRIPT = new LuaScript(trimDeathsSource);
/** Dead peers' records recovered per look for them (every 30 s). */
const MAX_PEERS_PER_LOOK = 100;
/** Fields of the deaths hash looked at per trim step. */
const TRIM_DEATHS_COUNT = 1_000;

export interface RecoverySettings {
  /** drain-init's key prefix (--redis-prefix). */
  readonly prefix: string;
  readonly sidekiq: SidekiqKeys;
  readonly poison: PoisonRule;
  readonly clock: Clock;
  /** This host's live Sidekiq processes, when drain-init watches them: other identities of this host run nothing. */
  readonly localHost?: () => LocalHost;
  /** Where warnings about Sidekiq's data go (the watcher's, throttled); else each is logged. */
  readonly warnSidekiq?: (warnings: readonly string[]) => void;
}

export interface RecoveryTarget {
  readonly instanceId: string;
  /** A peer's record: recovered only once its heartbeat record has expired. */
  readonly onlyIfExpired: boolean;
  /** `host:pid`: only the jobs this process ran; undefined for the whole record. */
  readonly process?: string | undefined;
  /** How the worker that ran the jobs ended, for a poison job's error message: `OOM-killed` ... */
  readonly cause: string;
  /** The record's owner runs on and releases held jobs one at a time; false: held jobs go back to their queues. */
  readonly holdSuspects: boolean;
}

/** A job moved to Sidekiq's Dead set. */
export interface BuriedJob {
  readonly jid: string;
  readonly queue: string;
  readonly class: string;
  readonly deaths: number;
}

export type RecoveryResult =
  | { readonly kind: 'recovered'; readonly jobs: readonly JobResult[]; readonly buried: readonly BuriedJob[] }
  /** Another instance holds the lock: it is recovering the record. */
  | { readonly kind: 'locked' }
  /** The peer's heartbeat record exists: it is alive. */
  | { readonly kind: 'alive' }
  /** The lock expired before the script ran; whoever took it recovers the record. */
  | { readonly kind: 'lock-expired' }
  /** Sidekiq Pro's reliable fetch recovers the jobs itself: the record is left alone. */
  | { readonly kind: 'sidekiq-pro'; readonly keys: readonly string[] }
  /** Redis failed; the jobs stay in the record for a later run. `quiet`: Redis is down or refusing, which the connection logs. */
  | { readonly kind: 'failed'; readonly reason: string; readonly quiet: boolean };

/** The keys a recovery reads and writes, by type: a WRONGTYPE on one of them is named. */
function recoveryUse(keys: RecoveryKeys, sidekiq: SidekiqKeys): CommandUse {
  return {
    kind: 'write',
    keys: {
      [keys.jobs]: 'hash',
      [keys.lock]: 'string',
      [keys.index]: 'hash',
      [keys.deaths]: 'hash',
      [sidekiq.processes]: 'set',
    },
  };
}

/** Never rejects: a Redis failure is reported to the connection and logged. */
export async function recoverRecord(
  connection: RedisConnection,
  settings: RecoverySettings,
  target: RecoveryTarget,
  log: Logger,
): Promise<RecoveryResult> {
  let result: RecoveryResult;
  const use = recoveryUse(recoveryKeys(settings.prefix, target.instanceId), settings.sidekiq);
  try {
    result = await lockAndRequeue(connection, settings, target, log);
    connection.commandSucceeded(use);
  } catch (error) {
    connection.commandFailed(error, use);
    // Redis down or refusing is the connection's one line: the recovery waits for it quietly.
    const quiet = classifyRedisError(error).kind !== 'other';
    result = { kind: 'failed', reason: error instanceof Error ? error.message : String(error), quiet };
  }
  logRecovery(log, target.instanceId, result);
  return result;
}

/**
 * The ids of the instances whose job record may hold jobs, whose heartbeat record has expired and whose owner
 * is not connected to Redis (where CLIENT LIST is allowed), this one's left out. A record whose heartbeat
 * was lost (a Redis restart) while its owner runs on is not a dead peer's.
 */
export async function findDeadPeers(connection: RedisConnection, prefix: string, ownId: string): Promise<string[]> {
  const { client } = connection;
  const owners = await client.hgetall(recoveryKeys(prefix, ownId).index);
  const ids = Object.keys(owners)
    .filter((id) => id !== ownId)
    .sort();
  const alive = await keysExist(
    client,
    ids.map((id) => recoveryKeys(prefix, id).instance),
  );
  const expired = ids.filter((_, index) => alive[index] === false);
  if (expired.length === 0) return [];
  const clients = await clientList(client);
  return expired.filter((id) => clients === undefined || !listsConnection(clients, owners[id] ?? ''));
}

/** Recovers every dead peer's record, one after the other; never rejects. */
export async function recoverDeadPeers(
  connection: RedisConnection,
  settings: RecoverySettings,
  ownId: string,
  log: Logger,
): Promise<RecoveryResult[]> {
  let dead: string[];
  try {
    dead = await findDeadPeers(connection, settings.prefix, ownId);
  } catch (error) {
    const index = recoveryKeys(settings.prefix, ownId).index;
    connection.commandFailed(error, { kind: 'read', keys: { [index]: 'hash' } });
    if (classifyRedisError(error, 'read').kind === 'other')
      log.warn(
        { reason: error instanceof Error ? error.message : String(error) },
        'could not look for dead peers; looking again later',
      );
    return [];
  }
  const results: RecoveryResult[] = [];
  // A hostile index (thousands of junk entries) costs one look a bounded amount; the rest waits for the next.
  for (const instanceId of dead.slice(0, MAX_PEERS_PER_LOOK)) {
    const target = { instanceId, onlyIfExpired: true, cause: 'its drain-init died with it', holdSuspects: false };
    results.push(await recoverRecord(connection, settings, target, log));
  }
  return results;
}

/** CLIENT LIST, or undefined where it is refused (a managed Redis, an ACL). */
async function clientList(client: Redis): Promise<string | undefined> {
  try {
    return String(await client.call('CLIENT', 'LIST', 'TYPE', 'normal'));
  } catch {
    return undefined;
  }
}

async function lockAndRequeue(
  connection: RedisConnection,
  settings: RecoverySettings,
  target: RecoveryTarget,
  log: Logger,
): Promise<RecoveryResult> {
  const { client } = connection;
  const keys = recoveryKeys(settings.prefix, target.instanceId);
  const token = await acquireLock(client, keys.lock, LOCK_TTL_MS);
  if (token === undefined) return { kind: 'locked' };
  try {
    const snapshot = await readSidekiq(client, { keys: settings.sidekiq });
    if (settings.warnSidekiq !== undefined) settings.warnSidekiq(snapshot.warnings);
    else for (const warning of snapshot.warnings) log.warn(warning);
    const superFetch = await findSuperFetch(client, settings.sidekiq, snapshot.processes);
    if (superFetch.length > 0) return { kind: 'sidekiq-pro', keys: superFetch };
    const running = runningJobs(snapshot, settings.clock.epochMs() / 1000, settings.localHost?.());
    const reply = await requeueRecord(client, {
      ...target,
      keys,
      token,
      sidekiq: settings.sidekiq,
      poison: settings.poison,
      running,
    });
    if (reply.kind !== 'recovered') return reply.kind === 'not-held' ? { kind: 'lock-expired' } : reply;
    const buried = await buryPoison(client, keys, reply.jobs, target.cause, settings, log);
    return { kind: 'recovered', jobs: reply.jobs, buried };
  } finally {
    // A lock that cannot be released expires within LOCK_TTL_MS.
    await releaseLock(client, keys.lock, token).catch(() => false);
  }
}

/** Puts a held job back in its queue: its queue, or undefined when it was no longer held. Rejects when Redis fails. */
export async function releaseHeldJob(
  client: Redis,
  settings: RecoverySettings,
  instanceId: string,
  jid: string,
): Promise<string | undefined> {
  const keys = recoveryKeys(settings.prefix, instanceId);
  const queue = await RELEASE_SCRIPT.run(client, [keys.jobs], [jid, settings.sidekiq.prefix]);
  return typeof queue === 'string' ? queue : undefined;
}

/**
 * One step of forgetting deaths older than the window (a job run to its end outside drain-init is never
 * acked): resolves to the cursor of the next step, '0' once the hash was walked. Rejects when Redis fails.
 */
export async function trimJobDeaths(client: Redis, settings: RecoverySettings, cursor: string): Promise<string> {
  const keys = recoveryKeys(settings.prefix, '');
  const args = [cursor, String(settings.poison.windowMs), String(TRIM_DEATHS_COUNT)];
  const reply = await TRIM_DEATHS_SCRIPT.run(client, [keys.deaths], args);
  return Array.isArray(reply) && typeof reply[0] === 'string' ? reply[0] : '0';
}

/** Moves each poison job from the record to Sidekiq's Dead set; one that is not a job object stays (logged). */
async function buryPoison(
  client: Redis,
  keys: RecoveryKeys,
  jobs: readonly JobResult[],
  cause: string,
  settings: RecoverySettings,
  log: Logger,
): Promise<BuriedJob[]> {
  const buried: BuriedJob[] = [];
  for (const job of jobs) {
    if (job.outcome !== 'poison') continue;
    const deaths = job.deaths ?? settings.poison.maxDeaths;
    const payload = jobPayload(await client.hget(keys.jobs, job.jid));
    const facts = {
      deaths,
      lastCause: cause,
      windowHours: settings.poison.windowMs / 3_600_000,
      nowEpochMs: settings.clock.epochMs(),
    };
    const entry = payload === undefined ? undefined : deadJobEntry(payload, facts);
    if (entry === undefined) {
      log.warn({ jid: job.jid, queue: job.detail }, 'a poison job is not a JSON object: left in the job record');
      continue;
    }
    const args = [job.jid, entry, String(DEAD_MAX_JOBS), String(DEAD_TIMEOUT_S)];
    if ((await BURY_SCRIPT.run(client, [keys.jobs, keys.deaths, settings.sidekiq.dead], args)) === 1) {
      buried.push({ jid: job.jid, queue: job.detail, class: jobClass(payload ?? ''), deaths });
    }
  }
  return buried;
}

/** The job string of a record entry. */
function jobPayload(entry: string | null): string | undefined {
  if (entry === null) return undefined;
  try {
    const parsed = JSON.parse(entry) as { payload?: unknown };
    return typeof parsed.payload === 'string' ? parsed.payload : undefined;
  } catch {
    return undefined;
  }
}

function jobClass(payload: string): string {
  try {
    const job = JSON.parse(payload) as { class?: unknown; wrapped?: unknown };
    return typeof job.wrapped === 'string' ? job.wrapped : typeof job.class === 'string' ? job.class : '?';
  } catch {
    return '?';
  }
}

/** Jids named in a summary line at most. */
const JIDS_SHOWN = 5;

/** The count, the count by detail (what is wrong, Redis's error) and the first jids of these jobs; undefined for none. */
function summarize(
  jobs: readonly JobResult[],
): { count: number; byReason: Record<string, number>; jids: string[] } | undefined {
  if (jobs.length === 0) return undefined;
  const byReason: Record<string, number> = {};
  for (const job of jobs) byReason[job.detail] = (byReason[job.detail] ?? 0) + 1;
  return { count: jobs.length, byReason, jids: jobs.slice(0, JIDS_SHOWN).map((job) => job.jid) };
}

function logRecovery(log: Logger, instanceId: string, result: RecoveryResult): void {
  switch (result.kind) {
    case 'recovered': {
      // A hostile record may hold thousands of entries: one line for all the malformed, one for the failed.
      const malformed = summarize(result.jobs.filter((job) => job.outcome === 'malformed'));
      if (malformed !== undefined)
        log.warn(
          { instanceId, ...malformed },
          'malformed job record entries dropped: they are no Sidekiq job to put back',
        );
      const failed = summarize(result.jobs.filter((job) => job.outcome === 'failed'));
      if (failed !== undefined)
        log.warn({ instanceId, ...failed }, 'jobs not requeued; they stay in the record for the next recovery');
      for (const job of result.jobs)
        if (job.outcome !== 'poison' && job.outcome !== 'malformed' && job.outcome !== 'failed')
          log.debug({ instanceId, jid: job.jid, queue: job.detail, outcome: job.outcome }, 'recovery of a job');
      for (const job of result.buried) {
        log.warn(
          { instanceId, jid: job.jid, class: job.class, queue: job.queue, deaths: job.deaths },
          `job moved to Sidekiq's Dead set: the worker running it died ${job.deaths} times (retry it from the Web UI once fixed)`,
        );
      }
      const counts = countOutcomes(result.jobs);
      if (result.jobs.length > 0) log.info({ instanceId, ...counts }, 'recovered the jobs of a dead worker');
      if (counts.held > 0)
        log.info(
          { instanceId, held: counts.held },
          'jobs one worker death short of the Dead set are held: they go back to their queues one at a time, ' +
            'so a job that kills its worker dies alone and the jobs that only ran beside it do not',
        );
      break;
    }
    case 'sidekiq-pro':
      log.info(
        { instanceId, keys: result.keys.slice(0, 3) },
        "Sidekiq Pro's reliable fetch is in use and recovers jobs itself: drain-init leaves them to it",
      );
      break;
    case 'lock-expired':
      log.warn({ instanceId }, 'the recovery lock expired before the requeue; whoever took it recovers the jobs');
      break;
    case 'failed':
      if (result.quiet) break;
      log.warn(
        { instanceId, reason: result.reason },
        'job recovery failed; the jobs stay in the record for the next attempt',
      );
      break;
    case 'locked':
    case 'alive':
      log.debug({ instanceId, outcome: result.kind }, 'job record not recovered');
      break;
  }
}
