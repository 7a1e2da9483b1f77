// Recovers the jobs of a job record whose worker died: this instance's own (its worker died, or the
// instance restarted in a new container), or a dead peer's, found through the index without KEYS or SCAN.
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import type { RedisConnection } from '../redis/connection.js';
import { keysExist } from '../redis/exists.js';
import type { SidekiqKeys } from '../sidekiq/keys.js';
import { readSidekiq } from '../sidekiq/reader.js';
import { recoveryKeys } from './keys.js';
import { acquireLock, releaseLock } from './lock.js';
import { findSuperFetch } from './pro.js';
import { countOutcomes, requeueRecord, runningJobs, type JobResult, type LocalHost } from './requeue.js';

/** Covers the reads between taking the lock and running the requeue script, with room to spare. */
const LOCK_TTL_MS = 30_000;

export interface RecoverySettings {
  /** drain-init's key prefix (--redis-prefix). */
  readonly prefix: string;
  readonly sidekiq: SidekiqKeys;
  readonly clock: Clock;
  /** This host's live Sidekiq processes, when drain-init watches them: other identities of this host run nothing. */
  readonly localHost?: () => LocalHost;
}

export interface RecoveryTarget {
  readonly instanceId: string;
  /** A peer's record: recovered only once its heartbeat record has expired. */
  readonly onlyIfExpired: boolean;
}

export type RecoveryResult =
  | { readonly kind: 'recovered'; readonly jobs: readonly JobResult[] }
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

/** The ids of the instances whose job record may hold jobs and whose heartbeat record has expired, this one's left out. */
export async function findDeadPeers(connection: RedisConnection, prefix: string, ownId: string): Promise<string[]> {
  const { client } = connection;
  const ids = (await client.smembers(recoveryKeys(prefix, ownId).index)).filter((id) => id !== ownId).sort();
  const alive = await keysExist(
    client,
    ids.map((id) => recoveryKeys(prefix, id).instance),
  );
  return ids.filter((_, index) => alive[index] === false);
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
  for (const instanceId of dead)
    results.push(await recoverRecord(connection, settings, { instanceId, onlyIfExpired: true }, log));
  return results;
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
    const reply = await requeueRecord(client, { ...target, keys, token, sidekiq: settings.sidekiq, running });
    connection.commandSucceeded();
    return reply.kind === 'not-held' ? { kind: 'lock-expired' } : reply;
  } finally {
    // A lock that cannot be released expires within LOCK_TTL_MS.
    await releaseLock(client, keys.lock, token).catch(() => false);
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
        else log.debug({ instanceId, jid: job.jid, queue: job.detail, outcome: job.outcome }, 'recovery of a job');
      }
      if (result.jobs.length > 0)
        log.info({ instanceId, ...countOutcomes(result.jobs) }, 'recovered the jobs of a dead worker');
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
