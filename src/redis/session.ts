// Everything drain-init does with Redis, over one connection. Loaded only when a Redis URL is set, so a
// plain init never pays for the Redis client.
import { hostname } from 'node:os';
import type { Config } from '../config/parse.js';
import type { Logger } from '../log/logger.js';
import { JobGuard } from '../recovery/guard.js';
import { sidekiqHostname } from '../sidekiq/match.js';
import { SidekiqWatcher, type ViewListener } from '../sidekiq/watcher.js';
import { connectRedis, type RedisConnection } from './connection.js';
import { startInstanceRecorder, type InstanceRecorder } from './record.js';
import type { Identity, RecordUpdate } from './schema.js';

export interface RedisSession {
  readonly connection: RedisConnection;
  readonly recorder: InstanceRecorder;
  readonly watcher: SidekiqWatcher;
  /** Undefined with --recovery off. */
  readonly guard: JobGuard | undefined;
  /** Stops watching, writes the final record, then disconnects. */
  close(final: RecordUpdate): Promise<void>;
}

export interface SessionHooks {
  /** The worker's command line says Sidekiq. */
  readonly expectSidekiq: boolean;
  /** The supervised child, undefined before it starts and after it exits. */
  readonly childPid: () => number | undefined;
  readonly onWorkerView: ViewListener;
}

export function openRedisSession(
  redisUrl: string,
  config: Config,
  log: Logger,
  identity: Identity,
  hooks: SessionHooks,
): RedisSession {
  const connection = connectRedis(redisUrl, log, `drain-init:${config.instanceId}`);
  const recorder = startInstanceRecorder(connection, config, log, identity);
  // The worker inherits drain-init's environment, so it names its host as drain-init would.
  const watcherOptions = {
    hostname: sidekiqHostname(process.env, hostname()),
    namespace: config.sidekiqNamespace,
    expectSidekiq: hooks.expectSidekiq,
  };
  const watcher = new SidekiqWatcher(connection, watcherOptions, hooks.childPid, log, hooks.onWorkerView);
  const guardSettings = {
    prefix: config.redisPrefix,
    namespace: config.sidekiqNamespace,
    instanceId: config.instanceId,
    queues: config.recoveryQueues,
    hostname: watcherOptions.hostname,
  };
  const guard = config.recovery ? new JobGuard(connection, watcher, guardSettings, log) : undefined;
  return {
    connection,
    recorder,
    watcher,
    guard,
    async close(final) {
      guard?.stop();
      watcher.stop();
      await recorder.close(final);
      connection.close();
    },
  };
}
