// The recorder's pacing on a clock driven by hand and a store made in the test: what it writes and when.
import { beforeEach, describe, expect, it } from 'vitest';
import { Recorder, type BeatReply, type RecordConfig, type RecordStore } from '../../src/record/recorder.js';
import { captureLogger, FakeClock } from '../helpers/fake.js';

const CONFIG: RecordConfig = {
  instanceId: 'pod-1',
  redisPrefix: 'drain-init',
  heartbeatIntervalMs: 1_000,
  heartbeatTtlMs: 3_000,
};
/** Redis's clock runs this far ahead of the local epoch clock. */
const REDIS_AHEAD_MS = 5_000;

let clock: FakeClock;
let ready: boolean;
let writes: { fields: Readonly<Record<string, string>>; nowMs: number; at: number }[];
/** Writes answer when released, one by one, unless `autoAnswer`. */
let pending: ((failure?: Error) => void)[];
let autoAnswer: boolean;
let readyListeners: (() => void)[];
let outcomes: string[];

const time = (): [string, string] => {
  const ms = clock.epochMs() + REDIS_AHEAD_MS;
  return [String(Math.floor(ms / 1000)), String((ms % 1000) * 1000)];
};

const written = (): BeatReply => ({ kind: 'written', time: time(), note: undefined });

const store: RecordStore = {
  ready: () => ready,
  available: true,
  endpoint: 'redis://h:6379/0',
  onReady: (listener) => void readyListeners.push(listener),
  write: (fields, nowMs) => {
    writes.push({ fields, nowMs, at: clock.now() - 1_000 });
    if (autoAnswer) return Promise.resolve(written());
    return new Promise((resolve, reject) =>
      pending.push((failure) => (failure === undefined ? resolve(written()) : reject(failure))),
    );
  },
  time: () => Promise.resolve(time()),
  succeeded: () => outcomes.push('ok'),
  failed: (error) => outcomes.push(`failed ${(error as Error).message}`),
};

function recorder() {
  const { log, records } = captureLogger();
  const owner = { token: 'own', beatEveryMs: CONFIG.heartbeatIntervalMs };
  return { recorder: new Recorder(store, CONFIG, owner, log, { program: 'sidekiq', version: '1.0' }, clock), records };
}

beforeEach(() => {
  clock = new FakeClock();
  ready = true;
  writes = [];
  pending = [];
  autoAnswer = true;
  readyListeners = [];
  outcomes = [];
});

describe('the instance recorder', () => {
  it("writes at every heartbeat interval, with times on Redis's clock", async () => {
    recorder();
    await clock.advanceAsync(3_000);
    expect(writes.map((write) => write.at)).toEqual([1_000, 2_000, 3_000]);
    const last = writes.at(-1);
    expect(Number(last?.fields.lastBeat)).toBeCloseTo(clock.epochMs() + REDIS_AHEAD_MS, -2);
    expect(last?.nowMs).toBe(Number(last?.fields.lastBeat));
    expect(last?.fields).toMatchObject({ state: 'starting', program: 'sidekiq', restarts: '0' });
  });

  it('writes a change at once, and a change made during a write once that write has landed, with the latest state', async () => {
    const { recorder: record } = recorder();
    autoAnswer = false;
    record.update({ state: 'running', childPid: 7 });
    await clock.advanceAsync(0);
    record.update({ jobsInFlight: 1 });
    record.update({ jobsInFlight: 2 });
    expect(writes).toHaveLength(1);
    pending.shift()?.();
    await clock.advanceAsync(0);
    expect(writes.map((write) => write.fields.jobsInFlight)).toEqual([undefined, '2']);
  });

  it('skips a beat while a write is in flight, so a slow Redis never piles up writes', async () => {
    const { recorder: record } = recorder();
    autoAnswer = false;
    record.update({ state: 'running' });
    await clock.advanceAsync(5_000);
    expect(writes).toHaveLength(1);
    pending.shift()?.();
    await clock.advanceAsync(1_000);
    expect(writes.map((write) => write.at)).toEqual([0, 6_000]);
  });

  it('counts the beats Redis could not take, and writes the whole record again at the reconnection', async () => {
    const { recorder: record } = recorder();
    ready = false;
    record.update({ state: 'running' });
    await clock.advanceAsync(3_000);
    expect(writes).toHaveLength(0);
    expect(record.heartbeatFailures).toBe(3);
    ready = true;
    for (const listener of readyListeners) listener();
    await clock.advanceAsync(0);
    expect(writes.map((write) => write.fields.state)).toEqual(['running']);
  });

  it('reports a refused write to the store and counts it', async () => {
    const { recorder: record } = recorder();
    autoAnswer = false;
    record.update({ state: 'running' });
    await clock.advanceAsync(0);
    pending.shift()?.(new Error("READONLY You can't write against a read only replica."));
    await clock.advanceAsync(0);
    expect(outcomes).toEqual(["failed READONLY You can't write against a read only replica."]);
    expect(record.heartbeatFailures).toBe(1);
  });

  it('writes the final state at close and stops beating; a Redis that does not answer costs at most the budget', async () => {
    const { recorder: record, records } = recorder();
    await record.close({ state: 'exited', lastExit: 'code 0' });
    expect(writes.at(-1)?.fields).toMatchObject({ state: 'exited', lastExit: 'code 0' });
    await clock.advanceAsync(5_000);
    expect(writes).toHaveLength(1);
    expect(records.filter((line) => line.level === 40)).toEqual([]);

    const { recorder: slow, records: slowRecords } = recorder();
    autoAnswer = false;
    const closing = slow.close({ state: 'exited' });
    await clock.advanceAsync(1_000);
    await closing;
    expect(slowRecords.map((line) => line.msg)).toContain(
      'final state not written to Redis; the record expires as it was',
    );
  });
});
