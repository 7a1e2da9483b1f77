// The watcher's pacing and its reads, on a clock driven by hand and a Sidekiq source made in the test.
import { beforeEach, describe, expect, it } from 'vitest';
import type { SidekiqProcess, SidekiqSnapshot } from '../../src/sidekiq/parse.js';
import {
  BOOTING_POLL_MS,
  DISCOVER_EVERY_MS,
  DRAINING_POLL_MS,
  RUNNING_POLL_MS,
  SidekiqWatcher,
  type SidekiqSource,
} from '../../src/sidekiq/watcher.js';
import type { WorkerView } from '../../src/sidekiq/view.js';
import { captureLogger, FakeClock } from '../helpers/fake.js';

const HOST = 'worker-7f9c';
const CHILD = 7;

let clock: FakeClock;
let reads: string[];
/** What Redis holds when read: a function of the time, so heartbeats can stay fresh. */
let snapshot: () => SidekiqSnapshot;
let ready: boolean;
let failing: Error | undefined;
let outcomes: string[];

function processAt(beatEpochS: number, fields: Partial<SidekiqProcess> = {}): SidekiqProcess {
  return {
    identity: `${HOST}:${CHILD}:abc`,
    hostname: HOST,
    pid: CHILD,
    tag: '',
    concurrency: 5,
    queues: ['default'],
    busy: 0,
    quiet: false,
    beatEpochS,
    ...fields,
  };
}

const source: SidekiqSource = {
  ready: () => ready,
  discover: async (hostname) => {
    reads.push(`discover ${hostname} @${clock.now() - 1_000}`);
    if (failing !== undefined) throw failing;
    return snapshot();
  },
  readKnown: async (identities) => {
    reads.push(`known ${identities.join(',')} @${clock.now() - 1_000}`);
    if (failing !== undefined) throw failing;
    return snapshot();
  },
  succeeded: () => outcomes.push('ok'),
  failed: (error) => outcomes.push(`failed ${(error as Error).message}`),
};

function watcher(expectSidekiq = true) {
  const { log, records } = captureLogger();
  const watched = new SidekiqWatcher(
    source,
    { hostname: HOST, expectSidekiq },
    () => CHILD,
    clock,
    log,
    () => new Set([CHILD]),
  );
  const views: WorkerView[] = [];
  watched.onView((view) => views.push(view));
  return { watched, views, records };
}

function advance(ms: number): Promise<void> {
  return clock.advanceAsync(ms);
}

beforeEach(() => {
  clock = new FakeClock();
  reads = [];
  ready = true;
  failing = undefined;
  outcomes = [];
  snapshot = () => ({ processes: [], jobs: [], warnings: [] });
});

describe('the Sidekiq watcher', () => {
  it('looks at the booting pace until the worker registers, then at the running pace, reading only its hashes', async () => {
    const { watched, views } = watcher();
    watched.start();
    await advance(2 * BOOTING_POLL_MS);
    expect(reads).toEqual([
      `discover ${HOST} @0`,
      `discover ${HOST} @${BOOTING_POLL_MS}`,
      `discover ${HOST} @${2 * BOOTING_POLL_MS}`,
    ]);
    expect(views.at(-1)).toMatchObject({ processes: [], redisAnswered: true, lastBeatEpochS: undefined });

    snapshot = () => ({ processes: [processAt(clock.epochMs() / 1000)], jobs: [], warnings: [] });
    reads = [];
    await advance(BOOTING_POLL_MS + RUNNING_POLL_MS);
    expect(reads).toEqual([
      `discover ${HOST} @${3 * BOOTING_POLL_MS}`,
      `known ${HOST}:${CHILD}:abc @${3 * BOOTING_POLL_MS + RUNNING_POLL_MS}`,
    ]);
    expect(views.at(-1)?.processes.map((process) => process.pid)).toEqual([CHILD]);
  });

  it('lists the processes again every 30 s, and at once when a known one goes stale', async () => {
    const { watched } = watcher(false);
    snapshot = () => ({ processes: [processAt(clock.epochMs() / 1000)], jobs: [], warnings: [] });
    watched.start();
    await advance(DISCOVER_EVERY_MS + RUNNING_POLL_MS);
    expect(reads.filter((read) => read.startsWith('discover'))).toHaveLength(2);
    reads = [];
    snapshot = () => ({ processes: [processAt(clock.epochMs() / 1000 - 60)], jobs: [], warnings: [] });
    await advance(RUNNING_POLL_MS);
    expect(reads.map((read) => read.split(' ')[0])).toEqual(['known', 'discover']);
  });

  it('polls at the draining pace once a stop quiets the worker, the first time at once', async () => {
    const { watched } = watcher(false);
    watched.start();
    await advance(100);
    reads = [];
    watched.draining();
    await advance(2 * DRAINING_POLL_MS);
    expect(reads.map((read) => read.split(' @')[1])).toEqual([
      '100',
      String(100 + DRAINING_POLL_MS),
      String(100 + 2 * DRAINING_POLL_MS),
    ]);
  });

  it('says Redis did not answer, keeping the last view, when a read fails or Redis is not connected', async () => {
    const { watched, views } = watcher();
    snapshot = () => ({ processes: [processAt(clock.epochMs() / 1000)], jobs: [], warnings: [] });
    watched.start();
    await advance(10);
    failing = new Error('READONLY');
    await advance(RUNNING_POLL_MS);
    ready = false;
    await advance(RUNNING_POLL_MS);
    expect(views.map((view) => [view.processes.length, view.redisAnswered])).toEqual([
      [1, true],
      [1, false],
      [1, false],
    ]);
    expect(outcomes).toEqual(['ok', 'failed READONLY']);
  });

  it('warns once for each broken key, however often it is read', async () => {
    const { watched, records } = watcher(false);
    snapshot = () => ({ processes: [], jobs: [], warnings: ['Sidekiq key "x" skipped: not a hash'] });
    watched.start();
    await advance(5 * RUNNING_POLL_MS);
    expect(records.filter((record) => record.msg === 'Sidekiq key "x" skipped: not a hash')).toHaveLength(1);
  });

  it('stops polling when stopped', async () => {
    const { watched } = watcher();
    watched.start();
    await advance(10);
    watched.stop();
    reads = [];
    await advance(10 * RUNNING_POLL_MS);
    expect(reads).toEqual([]);
    expect(clock.pending).toBe(0);
  });
});
