// The parts that need Redis, assembled when a Redis URL is set; imported on demand, so a plain init never
// evaluates the Redis client.
import { hostname } from 'node:os';
import type { Config } from '../config/parse.js';
import type { Clock } from '../lib/clock.js';
import { FleetStops } from '../fleet/stops.js';
import type { Logger } from '../log/logger.js';
import { startInstanceRecorder, type InstanceRecorder } from '../record/recorder.js';
import type { Identity, RecordUpdate } from '../record/schema.js';
import { JobGuard } from '../recovery/guard.js';
import { connectRedis, type RedisConnection } from '../redis/connection.js';
import type { RedisEndpoint } from '../redis/url.js';
import { sidekiqKeys } from '../sidekiq/keys.js';
import { sidekiqHostname } from '../sidekiq/match.js';
import { CachedSidekiqStats, DEFAULT_LIMITS, gatherSidekiqStats } from '../sidekiq/stats.js';
import { SidekiqWatcher, sidekiqSource } from '../sidekiq/watcher.js';

export interface RedisParts {
  readonly connection: RedisConnection;
  readonly recorder: InstanceRecorder;
  readonly watcher: SidekiqWatcher;
  /** Undefined with --recovery off. */
  readonly guard: JobGuard | undefined;
  readonly stats: CachedSidekiqStats;
  /** The fleet's platform stops: this one's, and the count of those that ran out of time. */
  readonly stops: FleetStops;
  /** Stops watching, writes the final record, then disconnects. */
  close(final: RecordUpdate): Promise<void>;
}

export interface RedisPartsContext {
  readonly identity: Identity;
  /** The worker's command line says Sidekiq: the watcher looks for it at the booting pace. */
  readonly expectSidekiq: boolean;
  /** The supervised child, undefined before it starts and after it exits. */
  readonly childPid: () => number | undefined;
  readonly clock: Clock;
  readonly log: Logger;
}

export function assembleRedisParts(redis: RedisEndpoint, config: Config, context: RedisPartsContext): RedisParts {
  const { clock, log } = context;
  const connection = connectRedis(redis, log, `drain-init:${config.instanceId}`, clock);
  const recorder = startInstanceRecorder(connection, config, log, context.identity, clock);
  const sidekiq = sidekiqKeys(config.sidekiqNamespace);
  // The worker inherits drain-init's environment, so it names its host as drain-init would.
  const host = sidekiqHostname(process.env, hostname());
  const watcher = new SidekiqWatcher(
    sidekiqSource(connection, sidekiq),
    { hostname: host, expectSidekiq: context.expectSidekiq },
    context.childPid,
    clock,
    log,
  );
  watcher.onView((view, previous) => {
    if (view.jobsInFlight !== previous.jobsInFlight) recorder.update({ jobsInFlight: view.jobsInFlight });
  });
  const guard = config.recovery
    ? new JobGuard(
        connection,
        watcher,
        {
          prefix: config.redisPrefix,
          sidekiq,
          clock,
          instanceId: config.instanceId,
          queues: config.recoveryQueues,
          hostname: host,
        },
        log,
      )
    : undefined;
  const { client } = connection;
  const statsKey = [
    config.redisPrefix,
    'sidekiq-stats',
    ...(config.sidekiqNamespace === undefined ? [] : [config.sidekiqNamespace]),
  ].join(':');
  const stats = new CachedSidekiqStats(
    () =>
      client.status === 'ready' ? gatherSidekiqStats(client, sidekiq, statsKey, DEFAULT_LIMITS, clock) : undefined,
    log,
    clock,
  );
  return {
    connection,
    recorder,
    watcher,
    guard,
    stats,
    stops: new FleetStops(connection, config.redisPrefix, config.instanceId, clock, log),
    async close(final) {
      guard?.stop();
      watcher.stop();
      await recorder.close(final);
      connection.close();
    },
  };
}
