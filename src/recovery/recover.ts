// Recovers the jobs of a job record whose worker died: this instance's own (its worker died, or the
// instance restarted after a kill), or a dead peer's, found through the index without KEYS or SCAN. A job
// whose workers died too often goes to Sidekiq's Dead set instead of its queue.
import type { Redis } from 'ioredis';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { listsConnection } from '../record/claim.js';
import type { RedisConnection } from '../redis/connection.js';
import { keysExist } from '../redis/exists.js';
import { LuaScript } from '../redis/lua-script.js';
import type { SidekiqKeys } from '../sidekiq/keys.js';
import { readSidekiq } from '../sidekiq/reader.js';
import burySource from './bury.lua';
import releaseSource from './release.lua';
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

export interface RecoverySettings {
  /** drain-init's key prefix (--redis-prefix). */
  readonly prefix: string;
  readonly sidekiq: SidekiqKeys;
  readonly poison: PoisonRule;
  readonly clock: Clock;
  /** This host's live Sidekiq processes, when drain-init watches them: other identities of this host run nothing. */
  readonly localHost?: () => LocalHost;
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
  /** Redis failed; the jobs stay in the record for a later run. */
  | { readonly kind: 'failed'; readonly reason: string };

/** Never rejects: a Redis failure is reported to the connection and logged. */
export async function recoverRecord(
  connection: RedisConnection,
  settings: RecoverySettings,
  target: RecoveryTarget,
  log: Logger,
): Promise<RecoveryResult> {
  let result: RecoveryResult;
  try {
    result = await lockAndRequeue(connection, settings, target, log);
  } catch (error) {
    connection.commandFailed(error);
    result = { kind: 'failed', reason: error instanceof Error ? error.message : String(error) };
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
    connection.commandFailed(error);
    log.warn(
      { reason: error instanceof Error ? error.message : String(error) },
      'could not look for dead peers; looking again later',
    );
    return [];
  }
  const results: RecoveryResult[] = [];
  for (const instanceId of dead) {
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
    for (const warning of snapshot.warnings) log.warn(warning);
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
    connection.commandSucceeded();
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

function logRecovery(log: Logger, instanceId: string, result: RecoveryResult): void {
  switch (result.kind) {
    case 'recovered': {
      for (const job of result.jobs) {
        if (job.outcome === 'malformed')
          log.warn({ instanceId, jid: job.jid, problem: job.detail }, 'malformed job record entry dropped');
        else if (job.outcome === 'failed')
          log.warn(
            { instanceId, jid: job.jid, reason: job.detail },
            'job not requeued; it stays in the record for the next recovery',
          );
        else if (job.outcome !== 'poison')
          log.debug({ instanceId, jid: job.jid, queue: job.detail, outcome: job.outcome }, 'recovery of a job');
      }
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
