// The parts that need Redis, assembled when a Redis URL is set; imported on demand, so a plain init never
// evaluates the Redis client. The parts that write under the instance id (the record, the job guard) exist
// once the id is claimed, which never holds up the worker.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../config/parse.js';
import { sleep, within, type Clock } from '../lib/clock.js';
import { FleetStops } from '../fleet/stops.js';
import type { Logger } from '../log/logger.js';
import { claimInstanceId, NoInstanceIdError, type Claimed } from '../record/claim.js';
import { DeferredRecorder, startInstanceRecorder } from '../record/recorder.js';
import { connectionName, type Identity, type RecordUpdate } from '../record/schema.js';
import { JobGuard, type SupervisedProcesses } from '../recovery/guard.js';
import { COMMAND_TIMEOUT_MS, connectRedis, type RedisConnection } from '../redis/connection.js';
import type { RedisEndpoint } from '../redis/url.js';
import { sidekiqKeys, type SidekiqKeys } from '../sidekiq/keys.js';
import { sidekiqHostname } from '../sidekiq/match.js';
import { CachedSidekiqStats, DEFAULT_LIMITS, gatherSidekiqStats } from '../sidekiq/stats.js';
import { SidekiqWatcher, sidekiqSource } from '../sidekiq/watcher.js';

/** A claim that Redis refused (down, a timeout) is tried again after this. */
const CLAIM_RETRY_MS = 1_000;
/** At the end, held jobs go back to their queues within this time at most. */
const PUT_BACK_BUDGET_MS = 2_000;
/** Poison jobs are counted over Sidekiq Pro's own window. */
const POISON_WINDOW_MS = 72 * 3_600_000;

export interface RedisParts {
  readonly connection: RedisConnection;
  /** This drain-init's own: its record's owner token, and its Redis connection's name. */
  readonly token: string;
  readonly sidekiq: SidekiqKeys;
  readonly recorder: DeferredRecorder;
  readonly watcher: SidekiqWatcher;
  /** Undefined with --recovery off, and until the instance id is claimed. */
  guard(): JobGuard | undefined;
  /** The claim, once made; undefined when every id tried belongs to a live drain-init (logged). */
  readonly claimed: Promise<Claimed | undefined>;
  readonly stats: CachedSidekiqStats;
  /** The fleet's platform stops: this one's, and the count of those that ran out of time. */
  readonly stops: FleetStops;
  /** Stops watching, writes the final record, then disconnects. */
  close(final: RecordUpdate): Promise<void>;
}

export interface RedisPartsContext {
  readonly identity: Identity;
  /** The id to claim: --instance-id, or the default unique to this container. */
  readonly requestedId: string;
  /** The worker's command line says Sidekiq: the watcher looks for it at the booting pace. */
  readonly expectSidekiq: boolean;
  readonly supervised: SupervisedProcesses;
  /** The Redis endpoint records the worker's fetches. */
  readonly endpoint: boolean;
  readonly clock: Clock;
  readonly log: Logger;
}

export function assembleRedisParts(redis: RedisEndpoint, config: Config, context: RedisPartsContext): RedisParts {
  const { clock, log } = context;
  const token = randomBytes(8).toString('hex');
  const connection = connectRedis(redis, log, connectionName(token), clock);
  const sidekiq = sidekiqKeys(config.sidekiqNamespace);
  // The worker inherits drain-init's environment, so it names its host as drain-init would.
  const host = sidekiqHostname(process.env, hostname());
  const watcher = new SidekiqWatcher(
    sidekiqSource(connection, sidekiq),
    { hostname: host, expectSidekiq: context.expectSidekiq },
    context.supervised.childPid,
    clock,
    log,
  );
  const recorder = new DeferredRecorder(() => connection.client.status === 'ready', clock, config.heartbeatIntervalMs);
  let guard: JobGuard | undefined;
  let recordedJobs: number | undefined;
  watcher.onView((view) => {
    const jobsInFlight = guard?.jobsInFlight ?? view.jobsInFlight;
    if (jobsInFlight === recordedJobs) return;
    recordedJobs = jobsInFlight;
    recorder.update({ jobsInFlight });
  });
  let closed = false;
  let instanceId = context.requestedId;
  const claimed = claimUntilDone(connection, config, context, token, () => closed).then((claim) => {
    if (claim === undefined || closed) return claim;
    instanceId = claim.instanceId;
    const owner = { token, beatEveryMs: config.heartbeatIntervalMs };
    const recordConfig = { ...config, instanceId: claim.instanceId };
    recorder.bind(startInstanceRecorder(connection, recordConfig, owner, log, context.identity, clock));
    if (config.recovery) {
      guard = new JobGuard(
        connection,
        watcher,
        context.supervised,
        {
          prefix: config.redisPrefix,
          sidekiq,
          clock,
          instanceId: claim.instanceId,
          token,
          hostname: host,
          queues: config.recoveryQueues,
          poison: { maxDeaths: config.maxJobDeaths, windowMs: POISON_WINDOW_MS },
          endpoint: context.endpoint,
        },
        log,
      );
      guard.start();
    }
    return claim;
  });
  const { client } = connection;
  const statsKey = [
    config.redisPrefix,
    'sidekiq-stats',
    ...(config.sidekiqNamespace === undefined ? [] : [config.sidekiqNamespace]),
  ].join(':');
  const statsUse = { kind: 'read', keys: { [sidekiq.processes]: 'set', [sidekiq.queues]: 'set' } } as const;
  const stats = new CachedSidekiqStats(
    () =>
      client.status === 'ready'
        ? gatherSidekiqStats(client, sidekiq, statsKey, DEFAULT_LIMITS, clock).then(
            (gathered) => {
              connection.commandSucceeded(statsUse);
              return gathered;
            },
            (error: unknown) => {
              connection.commandFailed(error, statsUse);
              throw error;
            },
          )
        : undefined,
    log,
    clock,
  );
  return {
    connection,
    token,
    sidekiq,
    recorder,
    watcher,
    guard: () => guard,
    claimed,
    stats,
    stops: new FleetStops(connection, config.redisPrefix, () => instanceId, clock, log),
    async close(final) {
      closed = true;
      // Held jobs go back together; one Redis does not take in time is recovered with the record later.
      if (guard !== undefined) await within(clock, guard.putBackHeld(), PUT_BACK_BUDGET_MS, undefined);
      guard?.stop();
      if (guard !== undefined) await within(clock, guard.forgetRecord(), COMMAND_TIMEOUT_MS, undefined);
      watcher.stop();
      await recorder.close(final);
      connection.close();
    },
  };
}

/** Claims the instance id, trying again while Redis cannot be asked; undefined when no id can be had. */
async function claimUntilDone(
  connection: RedisConnection,
  config: Config,
  context: RedisPartsContext,
  token: string,
  closed: () => boolean,
): Promise<Claimed | undefined> {
  const { clock, log } = context;
  const request = {
    requestedId: context.requestedId,
    prefix: config.redisPrefix,
    token,
    ttlMs: config.heartbeatTtlMs,
    pid: process.pid,
    hostname: hostname(),
  };
  while (!closed()) {
    if (connection.client.status !== 'ready') {
      await nextReady(connection, clock);
      continue;
    }
    // Redis refuses writes (a replica, out of memory): the claim waits out the connection's back-off.
    if (!connection.writable) {
      await sleep(clock, CLAIM_RETRY_MS);
      continue;
    }
    try {
      const claim = await claimInstanceId(connection.client, request, clock, log);
      connection.commandSucceeded({ kind: 'write' });
      return claim;
    } catch (error) {
      if (error instanceof NoInstanceIdError) {
        log.error(
          { err: error.message },
          'no instance id could be claimed: drain-init keeps no record and recovers no job',
        );
        return undefined;
      }
      connection.commandFailed(error, { kind: 'write' });
      await sleep(clock, CLAIM_RETRY_MS);
    }
  }
  return undefined;
}

/** Resolves at the connection's next `ready`, or after CLAIM_RETRY_MS, whichever comes first. */
function nextReady(connection: RedisConnection, clock: Clock): Promise<void> {
  return new Promise((resolve) => {
    const ready = (): void => {
      cancel();
      resolve();
    };
    const cancel = clock.schedule(CLAIM_RETRY_MS, () => {
      connection.client.off('ready', ready);
      resolve();
    });
    connection.client.once('ready', ready);
  });
}
