// Every standard metric of the standalone Sidekiq exporter (Strech/sidekiq-prometheus-exporter, its
// standard.erb), read by name and label set from drain-init's /metrics, against a real Redis holding each
// Sidekiq version's data (test/fixtures/sidekiq-versions/), so that its dashboards and alerts work unchanged.
import { describe, expect, it } from 'vitest';
import { versionDump, writeDump, type Dump } from '../fixtures/sidekiq-versions/dumps.js';
import { parseExposition, type ParsedFamily } from '../helpers/exposition.js';
import { killedAfterEach } from '../helpers/pid1.js';
import { probeRequest, startWithProbe } from '../helpers/probe.js';
import { redisTestBed } from '../helpers/redis.js';

const track = killedAfterEach();

/** The exporter's standard families, as its template writes them: name, type and label names. */
const EXPORTER_STANDARD: Readonly<Record<string, { type: 'counter' | 'gauge'; labels: readonly string[] }>> = {
  sidekiq_processed_jobs_total: { type: 'counter', labels: [] },
  sidekiq_failed_jobs_total: { type: 'counter', labels: [] },
  sidekiq_workers: { type: 'gauge', labels: [] },
  sidekiq_processes: { type: 'gauge', labels: [] },
  sidekiq_host_processes: { type: 'gauge', labels: ['host', 'quiet'] },
  sidekiq_host_processes_memory_usage_bytes: { type: 'gauge', labels: ['host'] },
  sidekiq_busy_workers: { type: 'gauge', labels: [] },
  sidekiq_enqueued_jobs: { type: 'gauge', labels: [] },
  sidekiq_scheduled_jobs: { type: 'gauge', labels: [] },
  sidekiq_retry_jobs: { type: 'gauge', labels: [] },
  sidekiq_dead_jobs: { type: 'gauge', labels: [] },
  sidekiq_queue_latency_seconds: { type: 'gauge', labels: ['name'] },
  sidekiq_queue_enqueued_jobs: { type: 'gauge', labels: ['name'] },
  sidekiq_queue_max_processing_time_seconds: { type: 'gauge', labels: ['name'] },
  sidekiq_queue_workers: { type: 'gauge', labels: ['name'] },
  sidekiq_queue_processes: { type: 'gauge', labels: ['name'] },
  sidekiq_queue_busy_workers: { type: 'gauge', labels: ['name'] },
};

/**
 * What Sidekiq's own API says of each dump (4 members of `processes`: ours with 2 jobs, a killed
 * predecessor whose hash lives on with 1 job, a ghost without a hash, another pod with 1 job; 8.1.7
 * adds an idle quiet process and a busy one of our host). Ghosts count in `processes` and `busy` only.
 */
const EXPECTED: Record<
  string,
  {
    processes: number;
    busy: number;
    workers: number;
    hosts: Record<string, { quiet: number; notQuiet: number; memoryBytes?: number }>;
    /** Per served queue (critical and default alike): processes, their concurrency, their busy. */
    serving: [number, number, number];
    running: { critical: number; default: number };
  }
> = {
  'sidekiq-5.2.10': {
    processes: 4,
    busy: 4,
    workers: 30,
    hosts: { 'worker-7f9c': { quiet: 0, notQuiet: 2 }, 'worker-a1b2': { quiet: 0, notQuiet: 1 } },
    serving: [3, 30, 4],
    running: { critical: 1, default: 3 },
  },
  'sidekiq-6.5.12': {
    processes: 4,
    busy: 4,
    workers: 30,
    hosts: {
      'worker-7f9c': { quiet: 0, notQuiet: 2, memoryBytes: (135_604 + 182_152) * 1024 },
      'worker-a1b2': { quiet: 0, notQuiet: 1, memoryBytes: 267_175 * 1024 },
    },
    serving: [3, 30, 4],
    running: { critical: 1, default: 3 },
  },
  'sidekiq-7.3.9': {
    processes: 4,
    busy: 4,
    workers: 15,
    hosts: {
      'worker-7f9c': { quiet: 0, notQuiet: 2, memoryBytes: 335_343_616 },
      'worker-a1b2': { quiet: 0, notQuiet: 1, memoryBytes: 170_301_440 },
    },
    serving: [3, 15, 4],
    running: { critical: 1, default: 3 },
  },
  'sidekiq-8.0.7': {
    processes: 4,
    busy: 4,
    workers: 15,
    hosts: {
      'worker-7f9c': { quiet: 0, notQuiet: 2, memoryBytes: 449_312_768 },
      'worker-a1b2': { quiet: 0, notQuiet: 1, memoryBytes: 227_217_408 },
    },
    serving: [3, 15, 4],
    running: { critical: 1, default: 3 },
  },
  // concurrency is a hash field from 8.1.2, no longer in info.
  'sidekiq-8.1.7': {
    processes: 6,
    busy: 5,
    workers: 25,
    hosts: {
      'worker-7f9c': { quiet: 1, notQuiet: 3, memoryBytes: 712_648_704 },
      'worker-a1b2': { quiet: 0, notQuiet: 1, memoryBytes: 276_681_728 },
    },
    serving: [5, 25, 5],
    running: { critical: 1, default: 4 },
  },
};

function sampleOf(family: ParsedFamily | undefined, labels: Record<string, string> = {}): number | undefined {
  return family?.samples.find((sample) => JSON.stringify(sample.labels) === JSON.stringify(labels))?.value;
}

/** The oldest run_at of each queue's jobs in the dump's work hashes: the data the figure comes from. */
function oldestRunAt(dump: Dump): Map<string, number> {
  const oldest = new Map<string, number>();
  for (const [key, entry] of Object.entries(dump.keys)) {
    if (entry.type !== 'hash' || !/:work(ers)?$/.test(key)) continue;
    for (const text of Object.values(entry.value)) {
      const work = JSON.parse(text) as { queue: string; run_at: number };
      oldest.set(work.queue, Math.min(oldest.get(work.queue) ?? Infinity, work.run_at));
    }
  }
  return oldest;
}

describe("the exporter's standard metrics from a real Redis", () => {
  const redis = redisTestBed();

  it.each(Object.keys(EXPECTED))('%s: every name, with its labels and values', async (version) => {
    const dump = versionDump(version);
    const expected = EXPECTED[version];
    if (expected === undefined) throw new Error(version);
    await writeDump(redis(), dump);
    await redis().pipeline([
      ['SET', 'stat:failed', 7],
      ['ZADD', 'dead', 1, '{"jid":"d1"}', 2, '{"jid":"d2"}'],
      ['ZADD', 'retry', 3, '{"jid":"r1"}'],
      ['ZADD', 'schedule', 4, '{"jid":"s1"}', 5, '{"jid":"s2"}', 6, '{"jid":"s3"}'],
    ]);
    const { run, port } = await startWithProbe([
      '--preset',
      'sidekiq',
      '--redis-url',
      redis().url,
      '--',
      'sleep',
      '60',
    ]);
    track(run);
    // The first scrape may come before the connection is up: that answer is kept for 5 s.
    const deadline = Date.now() + 15_000;
    let before = Date.now() / 1000;
    let families = parseExposition((await probeRequest(port, '/metrics')).body);
    while (!families.has('sidekiq_workers') && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      before = Date.now() / 1000;
      families = parseExposition((await probeRequest(port, '/metrics')).body);
    }
    const after = Date.now() / 1000;

    for (const [name, { type, labels }] of Object.entries(EXPORTER_STANDARD)) {
      const family = families.get(name);
      expect(family?.type, name).toBe(type);
      const withoutRss = name === 'sidekiq_host_processes_memory_usage_bytes' && version === 'sidekiq-5.2.10';
      if (!withoutRss) expect(family?.samples.length, name).toBeGreaterThan(0);
      for (const sample of family?.samples ?? []) expect(Object.keys(sample.labels).sort(), name).toEqual(labels);
    }
    const family = (name: string) => families.get(name);
    expect(sampleOf(family('sidekiq_processed_jobs_total'))).toBe(1234);
    expect(sampleOf(family('sidekiq_failed_jobs_total'))).toBe(7);
    expect(sampleOf(family('sidekiq_processes'))).toBe(expected.processes);
    expect(sampleOf(family('sidekiq_busy_workers'))).toBe(expected.busy);
    expect(sampleOf(family('sidekiq_workers'))).toBe(expected.workers);
    expect(sampleOf(family('sidekiq_enqueued_jobs'))).toBe(1);
    expect(sampleOf(family('sidekiq_dead_jobs'))).toBe(2);
    expect(sampleOf(family('sidekiq_retry_jobs'))).toBe(1);
    expect(sampleOf(family('sidekiq_scheduled_jobs'))).toBe(3);

    const hostSamples = Object.entries(expected.hosts).flatMap(([host, { quiet, notQuiet }]) => [
      ...(quiet > 0 ? [{ labels: { host, quiet: 'true' }, value: quiet }] : []),
      { labels: { host, quiet: 'false' }, value: notQuiet },
    ]);
    expect(family('sidekiq_host_processes')?.samples).toEqual(hostSamples);
    const memory = Object.entries(expected.hosts).flatMap(([host, { memoryBytes }]) =>
      memoryBytes === undefined ? [] : [{ labels: { host }, value: memoryBytes }],
    );
    // Sidekiq reports its resident set from 6.2: before that the family has no sample, as the exporter's.
    if (memory.length === 0) expect(family('sidekiq_host_processes_memory_usage_bytes')?.samples).toEqual([]);
    else expect(family('sidekiq_host_processes_memory_usage_bytes')?.samples).toEqual(memory);

    const [processes, workers, busy] = expected.serving;
    for (const name of ['critical', 'default']) {
      expect(sampleOf(family('sidekiq_queue_processes'), { name })).toBe(processes);
      expect(sampleOf(family('sidekiq_queue_workers'), { name })).toBe(workers);
      expect(sampleOf(family('sidekiq_queue_busy_workers'), { name })).toBe(busy);
      expect(sampleOf(family('sidekiq_queue_running_jobs'), { name })).toBe(
        expected.running[name as 'critical' | 'default'],
      );
      const runAt = oldestRunAt(dump).get(name) ?? NaN;
      const processing = sampleOf(family('sidekiq_queue_max_processing_time_seconds'), { name }) ?? -1;
      expect(processing).toBeGreaterThanOrEqual(Math.floor(before - runAt) - 1);
      expect(processing).toBeLessThanOrEqual(Math.ceil(after - runAt));
    }
    expect(family('sidekiq_queue_enqueued_jobs')?.samples).toEqual([
      { labels: { name: 'critical' }, value: 0 },
      { labels: { name: 'default' }, value: 1 },
    ]);
    const job = JSON.parse((dump.keys['queue:default']?.value as string[])[0] ?? '{}') as { enqueued_at: number };
    const enqueuedAtS = job.enqueued_at > 1e11 ? job.enqueued_at / 1000 : job.enqueued_at;
    const latency = sampleOf(family('sidekiq_queue_latency_seconds'), { name: 'default' }) ?? -1;
    expect(latency).toBeGreaterThanOrEqual(before - enqueuedAtS - 1);
    expect(latency).toBeLessThanOrEqual(after - enqueuedAtS + 1);
    // The jobs' arguments never leave Redis.
    expect((await probeRequest(port, '/metrics')).body).not.toMatch(/monthly|weekly|hourly|lost/);
  });

  it('costs the fleet one gather per 5 s: the first drain-init keeps the reply in Redis for the others', async () => {
    await writeDump(redis(), versionDump('sidekiq-8.1.7'));
    const pods = await Promise.all(
      ['pod-a', 'pod-b', 'pod-c'].map(async (id) => {
        const { run, port } = await startWithProbe([
          ...['--preset', 'sidekiq', '--redis-url', redis().url, '--instance-id', id],
          ...['--', 'sleep', '60'],
        ]);
        track(run);
        return port;
      }),
    );
    const gathered = async (): Promise<number> => {
      const stats = await redis().command('INFO', 'commandstats');
      return Number(/^cmdstat_set:calls=(\d+)/m.exec(stats)?.[1] ?? 0);
    };
    const scrape = async (port: number) => parseExposition((await probeRequest(port, '/metrics')).body);
    // Until each pod's connection is up and it has its figures.
    const deadline = Date.now() + 15_000;
    while (!(await Promise.all(pods.map(scrape))).every((families) => families.has('sidekiq_workers'))) {
      if (Date.now() > deadline) throw new Error("no Sidekiq figures in every pod's /metrics");
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await new Promise((resolve) => setTimeout(resolve, 5_100));
    await redis().call('CONFIG', 'RESETSTAT');
    const figures = await Promise.all(pods.map(scrape));
    // Each pod ran the script once (its own 5 s cache had run out); only the first gathered and kept the reply.
    expect(await gathered()).toBe(1);
    for (const families of figures) expect(sampleOf(families.get('sidekiq_workers'))).toBe(25);
    expect(await redis().call('PTTL', 'drain-init:sidekiq-stats')).toBeGreaterThan(0);
  });
});
