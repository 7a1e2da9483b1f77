import { describe, expect, it } from 'vitest';
import { CachedSidekiqStats, parseStatsReply, type SidekiqStats } from '../../src/sidekiq/stats.js';
import type { Parsed } from '../../src/sidekiq/parse.js';
import { captureLogger, FakeClock } from '../helpers/fake.js';

const NOW_S = 1_795_325_500;
const LIMITS = { maxQueues: 2, maxProcesses: 3 };

/** A reply of the stats script, as Redis gives it: one JSON text. */
function reply(fields: Record<string, unknown> = {}): string {
  return JSON.stringify({
    ...{ processed: '120', failed: '3', scheduled: 4, retry: 5, dead: 6, processes: 2, queueCount: 0 },
    ...{ enqueued: 0, busy: 1, workers: 10, unreadable: 0, queues: {}, hosts: {}, serving: {}, running: {} },
    ...fields,
  });
}

describe('the stats reply', () => {
  it('reads the totals and each queue, latency from seconds or milliseconds', () => {
    const queues = [
      ['critical', 0, ''],
      ['default', 7, String(NOW_S - 12.5)],
      ['v8', 1, String((NOW_S - 2) * 1000)],
    ];
    const { value, warnings } = parseStatsReply(reply({ queues, queueCount: 3, enqueued: 8 }), NOW_S, {
      maxQueues: 3,
      maxProcesses: 3,
    });
    expect(warnings).toEqual([]);
    expect(value).toEqual({
      processed: 120,
      failed: 3,
      scheduled: 4,
      retry: 5,
      dead: 6,
      processes: 2,
      busy: 1,
      workers: 10,
      enqueued: 8,
      queues: [
        { name: 'critical', size: 0, latencyS: 0 },
        { name: 'default', size: 7, latencyS: 12.5 },
        { name: 'v8', size: 1, latencyS: 2 },
      ],
      hosts: [],
      serving: [],
      running: [],
    });
  });

  it('reads hosts, the queues processes serve and the jobs running, sorted by name', () => {
    const { value } = parseStatsReply(
      reply({
        hosts: [
          ['worker-b', 0, 2, -1],
          ['worker-a', 1, 1, 300],
        ],
        serving: [
          ['default', 3, 15, 4],
          ['critical', 1, 5, 2],
        ],
        running: [['default', 2, NOW_S - 42.7]],
      }),
      NOW_S,
      LIMITS,
    );
    expect(value.hosts).toEqual([
      { host: 'worker-a', quiet: 1, notQuiet: 1, memoryBytes: 300 * 1024 },
      { host: 'worker-b', quiet: 0, notQuiet: 2, memoryBytes: undefined },
    ]);
    expect(value.serving).toEqual([
      { queue: 'critical', processes: 1, workers: 5, busy: 2 },
      { queue: 'default', processes: 3, workers: 15, busy: 4 },
    ]);
    expect(value.running).toEqual([{ queue: 'default', jobs: 2, maxProcessingS: 42 }]);
  });

  it('warns when the caps leave queues or processes out, and of unreadable processes', () => {
    const queues = [
      ['a', 1, ''],
      ['b', 1, ''],
    ];
    const text = reply({ processes: 800, busy: 9, queueCount: 150, queues, unreadable: 2 });
    expect(parseStatsReply(text, NOW_S, LIMITS).warnings).toEqual([
      'Sidekiq has 150 queues: metrics cover the first 2 by name',
      'Sidekiq processes has 800 members: the process figures cover the first 3 by identity',
      '2 Sidekiq processes have an info field that is not a JSON object: they are left out',
    ]);
  });

  it('leaves out the latency of a queue whose oldest job is unreadable, with a warning', () => {
    const { value, warnings } = parseStatsReply(reply({ queueCount: 1, queues: [['mail', 4, '?']] }), NOW_S, LIMITS);
    expect(value.queues).toEqual([{ name: 'mail', size: 4, latencyS: undefined }]);
    expect(warnings).toEqual([
      'Sidekiq queue "mail": its oldest job is not a JSON object, so its latency is not reported',
    ]);
  });

  it('reads a corrupt counter as 0, as Sidekiq does, and a future enqueue time as no latency', () => {
    const text = reply({ processed: 'abc', failed: '-4', queueCount: 1, queues: [['q', 1, String(NOW_S + 30)]] });
    expect(parseStatsReply(text, NOW_S, LIMITS).value).toMatchObject({
      processed: 0,
      failed: 0,
      queues: [{ name: 'q', size: 1, latencyS: 0 }],
    });
  });

  it('throws on a reply of another shape', () => {
    for (const bad of [
      null,
      'OK',
      '[1,2]',
      reply({ busy: '1' }),
      reply({ processed: 120 }),
      reply({ queues: [['q', '1', '']] }),
      reply({ hosts: [['h', 1, 1]] }),
      reply({ running: 'none' }),
    ]) {
      expect(() => parseStatsReply(bad, NOW_S, LIMITS)).toThrow(
        'the Sidekiq stats script answered in an unknown shape',
      );
    }
  });
});

const STATS: SidekiqStats = {
  processed: 1,
  failed: 0,
  scheduled: 0,
  retry: 0,
  dead: 0,
  processes: 1,
  busy: 0,
  workers: 5,
  enqueued: 0,
  queues: [],
  hosts: [],
  serving: [],
  running: [],
};

describe('the stats cache', () => {
  function cache(gather: () => Promise<Parsed<SidekiqStats>> | undefined) {
    const clock = new FakeClock();
    const { log, records } = captureLogger();
    const cached = new CachedSidekiqStats(gather, log, clock, 5_000);
    return { cached, records, advance: (ms: number) => clock.advance(ms) };
  }

  it('gathers once per period, however many scrapes, and joins the gather under way', async () => {
    let gathers = 0;
    const { cached, advance } = cache(() => {
      gathers++;
      return Promise.resolve({ value: { ...STATS, processed: gathers }, warnings: [] });
    });
    const [first, second] = await Promise.all([cached.get(), cached.get()]);
    expect(gathers).toBe(1);
    expect(first).toBe(second);
    advance(4_999);
    expect((await cached.get())?.processed).toBe(1);
    advance(1);
    expect((await cached.get())?.processed).toBe(2);
    expect(gathers).toBe(2);
  });

  it('remembers a failure for the period too, and says so once in the log', async () => {
    let gathers = 0;
    const { cached, records, advance } = cache(() => {
      gathers++;
      return Promise.reject(new Error('NOPERM this user has no permissions to run the eval command'));
    });
    expect(await cached.get()).toBeUndefined();
    expect(await cached.get()).toBeUndefined();
    expect(gathers).toBe(1);
    advance(5_000);
    expect(await cached.get()).toBeUndefined();
    expect(gathers).toBe(2);
    const warnings = records.filter((record) => record.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({
      reason: 'NOPERM this user has no permissions to run the eval command',
      msg: "Sidekiq's figures could not be read from Redis; /metrics leaves them out",
    });
  });

  it('logs the warnings of a gather once, not at every period', async () => {
    const { cached, records, advance } = cache(() =>
      Promise.resolve({ value: STATS, warnings: ['Sidekiq has 150 queues: metrics cover the first 100 by name'] }),
    );
    for (let period = 0; period < 5; period++) {
      await cached.get();
      advance(5_000);
    }
    expect(records.filter((record) => record.level === 40).map((record) => record.msg)).toEqual([
      'Sidekiq has 150 queues: metrics cover the first 100 by name',
    ]);
  });

  it('asks nothing of Redis when it cannot be asked', async () => {
    const { cached } = cache(() => undefined);
    expect(await cached.get()).toBeUndefined();
  });
});
