// The job guard's pace, on a FakeClock against a real redis-server: nothing happens before its time, and
// what is due happens when the clock gets there: the sweep for ended processes, the held jobs going back
// one at a time, the look for dead peers and the trim of old death counts.
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { connectRedis, type RedisConnection } from '../../src/redis/connection.js';
import { parseRedisUrl } from '../../src/redis/url.js';
import { JobGuard, PEER_SCAN_EVERY_MS, SWEEP_EVERY_MS, type WorkerReads } from '../../src/recovery/guard.js';
import { recoveryKeys } from '../../src/recovery/keys.js';
import { UNFETCHED_WAIT_MS } from '../../src/recovery/quarantine.js';
import { SIDEKIQ_KEYS } from '../../src/sidekiq/keys.js';
import { captureLogger, FakeClock } from '../helpers/fake.js';
import { eventually, waitFor } from '../helpers/pid1.js';
import { redisTestBed } from '../helpers/redis.js';

const PREFIX = 'drain-init';
const OWN = 'pod-own';
const GONE_PID = 999_999;

const redis = redisTestBed();
const connections: RedisConnection[] = [];
const guards: JobGuard[] = [];

afterEach(() => {
  for (const guard of guards.splice(0)) guard.stop();
  for (const connection of connections.splice(0)) connection.close();
});

function jobString(jid: string): string {
  return `{"retry":true,"queue":"default","args":[1,"${jid}"],"class":"SleepJob","jid":"${jid}","created_at":1795325608.1}`;
}

/** A record entry as fetch.lua writes it; `held` as requeue.lua marks it. */
function fetchedEntry(jid: string, held = false): string {
  const entry = JSON.stringify({ queue: 'default', payload: jobString(jid), process: `pod-own:${GONE_PID}` });
  return held ? `{"held":true,${entry.slice(1)}` : entry;
}

/** Idle Sidekiq reads: the guard's timers alone drive it here. */
const NO_WORKER: WorkerReads = {
  view: { processes: [], jobsInFlight: 0, lastBeatEpochS: undefined, redisAnswered: true },
  jobs: [],
  onView: () => {},
  poll: () => Promise.resolve(),
  warn: () => {},
};

async function startGuard(clock: FakeClock): Promise<JobGuard> {
  const connection = connectRedis(parseRedisUrl(redis().url), captureLogger().log, 'drain-init:token', systemClock);
  connections.push(connection);
  await waitFor(() => (connection.client.status === 'ready' ? true : undefined), 'a connection to Redis');
  const guard = new JobGuard(
    connection,
    NO_WORKER,
    { childPid: () => undefined, alive: (pid) => pid !== GONE_PID },
    {
      prefix: PREFIX,
      sidekiq: SIDEKIQ_KEYS,
      clock,
      instanceId: OWN,
      token: 'token',
      hostname: 'pod-own',
      queues: undefined,
      poison: { maxDeaths: 3, windowMs: 72 * 3_600_000 },
      endpoint: true,
    },
    captureLogger().log,
  );
  guards.push(guard);
  guard.start();
  await clock.advanceAsync(0);
  await eventually(async () => (guard.recording ? true : undefined), 'the own record recovered at start');
  return guard;
}

const queue = async (): Promise<string[]> => (await redis().call('LRANGE', 'queue:default', 0, -1)) as string[];
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 200));

describe('the job guard on a fake clock', () => {
  it('finds a process that ended holding a job at the next sweep, not before, and puts its job back', async () => {
    const clock = new FakeClock();
    const guard = await startGuard(clock);
    await redis().call('HSET', recoveryKeys(PREFIX, OWN).jobs, 'swept', fetchedEntry('swept'));
    guard.fetched('swept', `pod-own:${GONE_PID}`);

    await clock.advanceAsync(SWEEP_EVERY_MS - 1);
    await settle();
    expect(await queue()).toEqual([]);

    await clock.advanceAsync(1);
    await eventually(async () => ((await queue()).length > 0 ? true : undefined), 'the job back in its queue');
    expect(await queue()).toEqual([jobString('swept')]);
    expect(guard.jobsRecovered).toBe(1);
  });

  it('puts held jobs back one at a time: the next once the one out was not fetched here within the wait', async () => {
    const keys = recoveryKeys(PREFIX, OWN);
    await redis().call(
      'HSET',
      keys.jobs,
      'held-a',
      fetchedEntry('held-a', true),
      'held-b',
      fetchedEntry('held-b', true),
    );
    const clock = new FakeClock();
    const guard = await startGuard(clock);
    await eventually(async () => ((await queue()).length === 1 ? true : undefined), 'the first held job back');
    expect(guard.jobsHeld).toBe(1);

    await clock.advanceAsync(UNFETCHED_WAIT_MS - SWEEP_EVERY_MS);
    await settle();
    expect(await queue()).toHaveLength(1);

    await clock.advanceAsync(SWEEP_EVERY_MS);
    await eventually(async () => ((await queue()).length === 2 ? true : undefined), 'the second held job back');
    expect((await queue()).sort()).toEqual([jobString('held-a'), jobString('held-b')]);
    expect(guard.jobsHeld).toBe(0);
    expect(await redis().call('EXISTS', keys.jobs)).toBe(0);
  });

  it('looks for dead peers every 30 s: a record whose owner vanished after the start is recovered at the next look', async () => {
    const clock = new FakeClock();
    const guard = await startGuard(clock);
    const peer = recoveryKeys(PREFIX, 'pod-peer');
    await redis().call('HSET', peer.jobs, 'orphan', fetchedEntry('orphan'));
    await redis().call('HSET', peer.index, 'pod-peer', 'token-of-a-gone-peer');

    await clock.advanceAsync(PEER_SCAN_EVERY_MS - 1);
    await settle();
    expect(await queue()).toEqual([]);

    await clock.advanceAsync(1);
    await eventually(async () => ((await queue()).length > 0 ? true : undefined), "the peer's job back");
    expect(await queue()).toEqual([jobString('orphan')]);
    expect(guard.jobsRecovered).toBe(1);
  });

  it('forgets, at the look for dead peers, the deaths counted longer ago than the window', async () => {
    const clock = new FakeClock();
    await startGuard(clock);
    const deaths = recoveryKeys(PREFIX, OWN).deaths;
    const hour = 3_600_000;
    await redis().call('HSET', deaths, 'old', `2:${Date.now() - 73 * hour}`, 'recent', `2:${Date.now() - hour}`);
    await redis().call('HSET', deaths, 'garbage', 'not a count');

    await clock.advanceAsync(PEER_SCAN_EVERY_MS);
    await eventually(async () => (Number(await redis().call('HLEN', deaths)) === 1 ? true : undefined), 'the trim');
    expect(await redis().call('HKEYS', deaths)).toEqual(['recent']);
  });
});

describe("the index of job records at an instance's clean end", () => {
  const keys = recoveryKeys(PREFIX, OWN);

  it('no longer lists an instance whose record is empty', async () => {
    const guard = await startGuard(new FakeClock());
    await redis().call('HSET', keys.index, OWN, 'token', 'pod-other', 'other-token');
    await guard.forgetRecord();
    expect(await redis().call('HGETALL', keys.index)).toEqual(['pod-other', 'other-token']);
  });

  it('keeps listing a record that still holds a job, and an entry of another owner', async () => {
    const guard = await startGuard(new FakeClock());
    await redis().call('HSET', keys.index, OWN, 'token');
    await redis().call('HSET', keys.jobs, 'held-jid', fetchedEntry('held-jid', true));
    await guard.forgetRecord();
    expect(await redis().call('HGET', keys.index, OWN)).toBe('token');
    await redis().call('DEL', keys.jobs);
    await redis().call('HSET', keys.index, OWN, 'a-later-owner');
    await guard.forgetRecord();
    expect(await redis().call('HGET', keys.index, OWN)).toBe('a-later-owner');
  });
});
