// At a clean end the instance leaves the index of job records once its record is empty: the index then
// lists only records that may hold jobs. Against a real redis-server.
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { connectRedis, type RedisConnection } from '../../src/redis/connection.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { JobGuard, type WorkerReads } from '../../src/recovery/guard.js';
import { recoveryKeys } from '../../src/recovery/keys.js';
import { SIDEKIQ_KEYS } from '../../src/sidekiq/keys.js';
import { captureLogger, FakeClock } from '../helpers/fake.js';
import { waitFor } from '../helpers/pid1.js';
import { redisTestBed } from '../helpers/redis.js';

const redis = redisTestBed();
const connections: RedisConnection[] = [];
const KEYS = recoveryKeys('drain-init', 'pod-own');

afterEach(() => {
  for (const connection of connections.splice(0)) connection.close();
});

const NO_WORKER: WorkerReads = {
  view: { processes: [], jobsInFlight: 0, lastBeatEpochS: undefined, redisAnswered: true },
  jobs: [],
  onView: () => {},
  poll: () => Promise.resolve(),
  warn: () => {},
};

async function guard(): Promise<JobGuard> {
  const connection = connectRedis(parseRedisUrl(redis().url), captureLogger().log, 'drain-init:token', systemClock);
  connections.push(connection);
  await waitFor(() => (connection.client.status === 'ready' ? true : undefined), 'a connection to Redis');
  return new JobGuard(
    connection,
    NO_WORKER,
    { childPid: () => undefined, alive: () => true },
    {
      prefix: 'drain-init',
      sidekiq: SIDEKIQ_KEYS,
      clock: new FakeClock(),
      instanceId: 'pod-own',
      token: 'token',
      hostname: 'pod-own',
      queues: undefined,
      poison: { maxDeaths: 3, windowMs: 72 * 3_600_000 },
      endpoint: true,
    },
    captureLogger().log,
  );
}

describe("the index of job records at an instance's clean end", () => {
  it('no longer lists an instance whose record is empty', async () => {
    await redis().call('HSET', KEYS.index, 'pod-own', 'token', 'pod-other', 'other-token');
    await (await guard()).forgetRecord();
    expect(await redis().call('HGETALL', KEYS.index)).toEqual(['pod-other', 'other-token']);
  });

  it('keeps listing a record that still holds a job, and an entry of another owner', async () => {
    await redis().call('HSET', KEYS.index, 'pod-own', 'token');
    await redis().call('HSET', KEYS.jobs, 'held-jid', '{"held":true}');
    await (await guard()).forgetRecord();
    expect(await redis().call('HGET', KEYS.index, 'pod-own')).toBe('token');
    await redis().call('DEL', KEYS.jobs);
    await redis().call('HSET', KEYS.index, 'pod-own', 'a-later-owner');
    await (await guard()).forgetRecord();
    expect(await redis().call('HGET', KEYS.index, 'pod-own')).toBe('a-later-owner');
  });
});
