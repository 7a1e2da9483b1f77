// drain-init's own Redis connection for the worker's fetches: the fetch script runs on it in batches
// (fetch-batches.ts). It has no command timeout: a run that timed out could still take jobs after their
// put-back looked for them. While it is down or refused, each fetch runs on its worker's own connection.
import { Redis } from 'ioredis';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { ThrottledWarnings } from '../log/throttle.js';
import { redisOptions } from '../redis/connection.js';
import { RespError } from '../redis/resp-values.js';
import type { RedisEndpoint } from '../redis/url.js';
import type { SharedFetches } from './endpoint.js';
import { FetchBatches } from './fetch-batches.js';
import { FETCH_SCRIPT } from './fetch.js';

/** After Redis refused the script on this connection, fetches go by the workers' connections for this long. */
const REFUSED_PAUSE_MS = 60_000;
const WARNING_INTERVAL_MS = 600_000;

export function connectFetches(
  endpoint: RedisEndpoint,
  connectionName: string,
  clock: Clock,
  log: Logger,
): SharedFetches & { close(): void } {
  const client = new Redis({ ...redisOptions(endpoint, connectionName), commandTimeout: undefined });
  // drain-init's main connection reports Redis trouble; meanwhile fetches take the workers' connections.
  client.on('error', () => {});
  const warnings = new ThrottledWarnings(log, WARNING_INTERVAL_MS, clock);
  let refusedUntil = 0;
  const batches = new FetchBatches(async (keys, args) => {
    try {
      return await FETCH_SCRIPT.runBuffers(client, keys, args);
    } catch (error) {
      if (!(error instanceof Error) || error.name !== 'ReplyError') throw error;
      refusedUntil = clock.now() + REFUSED_PAUSE_MS;
      warnings.warn(
        'refused',
        { reason: error.message },
        "Redis refused the fetch script on drain-init's own connection: fetches run on the worker's connections for a minute",
      );
      throw new RespError(error.message);
    }
  });
  return {
    get ready() {
      return client.status === 'ready' && clock.now() >= refusedUntil;
    },
    db: endpoint.db,
    fetch: (target, request) => batches.fetch(target, request),
    close: () => client.disconnect(),
  };
}
