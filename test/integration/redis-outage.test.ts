// A long Redis outage against a real redis-server: the recorder beats every 10 ms and takes a burst of state updates
// every millisecond while redis-server is stopped for 12 s. Nothing may pile up (the V8 heap after a forced GC stays
// within 2 MiB), update() never waits for Redis, the outage is logged once and its end once, and the record comes
// back with the last state once redis-server runs again.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { connectRedis, type RedisConnection } from '../../src/redis/connection.js';
import { startInstanceRecorder, type InstanceRecorder } from '../../src/record/recorder.js';
import { captureLogger } from '../helpers/fake.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';
import { systemClock } from '../../src/lib/clock.js';
import { parseRedisUrl } from '../../src/redis/url.js';

const INTERVAL_MS = 10;
const TTL_MS = 1_000;
const OUTAGE_MS = 12_000;
const SAMPLE_EVERY_MS = 2_000;
/** update() calls per 1 ms tick: about 100,000 during the outage, so keeping each one would show in the heap. */
const UPDATES_PER_TICK = 10;
const HEAP_SLACK_BYTES = 2 * 1024 * 1024;
/**
 * A call that waited on Redis would take the command timeout (1 s); one that does no I/O takes microseconds,
 * or a few ms when a shared machine deschedules the test, so the bound tells the two apart without timing noise.
 */
const UPDATE_BOUND_MS = 500;
const OUTAGE_MSG = 'Redis unavailable; the worker runs on';
const RECOVERY_MSG = 'Redis available again';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

function heapAfterGc(): number {
  collectGarbage();
  return process.memoryUsage().heapUsed;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function until(probe: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (
    !(await Promise.resolve()
      .then(probe)
      .catch(() => false))
  ) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

let server: RedisServer | undefined;
let recorder: InstanceRecorder | undefined;
let connection: RedisConnection | undefined;

afterEach(async () => {
  await recorder?.close({ state: 'exited' });
  connection?.close();
  await server?.stop();
  recorder = undefined;
  connection = undefined;
  server = undefined;
});

describe('a 12 s Redis outage under a 10 ms heartbeat and constant state churn', () => {
  it(
    'keeps the heap flat and update() instant, logs the outage once, and writes the last state once Redis is back',
    { timeout: 40_000 },
    async () => {
      const redis = (server = await startRedis());
      const { log, records } = captureLogger();
      const id = `outage-${Math.random().toString(36).slice(2, 8)}`;
      const key = `drain-init:instance:${id}`;
      connection = connectRedis(parseRedisUrl(redis.url), log, `drain-init:${id}`, systemClock);
      const started = startInstanceRecorder(
        connection,
        { instanceId: id, redisPrefix: 'drain-init', heartbeatIntervalMs: INTERVAL_MS, heartbeatTtlMs: TTL_MS },
        { token: 'outage', beatEveryMs: INTERVAL_MS },
        log,
        {
          program: 'sidekiq',
          version: '0.1.0',
        },
        systemClock,
      );
      recorder = started;

      let updates = 0;
      let slowestMs = 0;
      let last = { jobsInFlight: 0, stopPlan: '' };
      const churn = setInterval(() => {
        for (let burst = 0; burst < UPDATES_PER_TICK; burst++) {
          updates++;
          last = { jobsInFlight: updates % 25, stopPlan: `quiet, then TERM after 25 s (update ${updates})` };
          const calledAt = performance.now();
          started.update({ state: updates % 2 === 0 ? 'running' : 'quieting', deadlineInMs: 25_000, ...last });
          slowestMs = Math.max(slowestMs, performance.now() - calledAt);
        }
      }, 1);

      try {
        await until(async () => (await redis.command('EXISTS', key)) === '1' && started.connected, 'the first record');
        process.kill(redis.pid(), 'SIGTERM');
        await until(() => records.some((record) => record.msg === OUTAGE_MSG), 'the outage warning');
        slowestMs = 0;
        const updatesBefore = updates;
        const outageStart = performance.now();
        const startHeap = heapAfterGc();
        const heaps: number[] = [];
        for (let due = SAMPLE_EVERY_MS; due <= OUTAGE_MS; due += SAMPLE_EVERY_MS) {
          await sleep(outageStart + due - performance.now());
          heaps.push(heapAfterGc());
        }
        const outageUpdates = updates - updatesBefore;
        const slowestDuringOutage = slowestMs;
        clearInterval(churn);

        expect(started.connected).toBe(false);
        expect(outageUpdates).toBeGreaterThan(10_000);
        for (const heap of heaps)
          expect(
            heap - startHeap,
            `heap after GC, ${heaps.map((h) => ((h - startHeap) / 1024).toFixed(0)).join(', ')} KiB over the start`,
          ).toBeLessThan(HEAP_SLACK_BYTES);
        expect(slowestDuringOutage).toBeLessThan(UPDATE_BOUND_MS);

        const wanted = last;
        await redis.restart();
        await until(async () => {
          const [jobs, plan] = (await redis.call('HMGET', key, 'jobsInFlight', 'stopPlan')) as (string | null)[];
          return jobs === String(wanted.jobsInFlight) && plan === wanted.stopPlan;
        }, 'the record with the last state after the restart');
        // The test can read the write before the recorder has read Redis's reply to it.
        await until(() => started.connected, 'the recorder to count the write');
        expect(records.filter((record) => record.msg === OUTAGE_MSG)).toHaveLength(1);
        expect(records.filter((record) => record.msg === RECOVERY_MSG)).toHaveLength(1);
      } finally {
        clearInterval(churn);
      }
    },
  );
});
