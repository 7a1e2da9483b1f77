import { describe, expect, it } from 'vitest';
import { renderExposition, type MetricFamily } from '../../src/probe/exposition.js';
import { drainInitFamilies, sidekiqFamilies } from '../../src/probe/metrics.js';
import type { SidekiqStats } from '../../src/sidekiq/stats.js';
import type { ProbeSnapshot } from '../../src/probe/state.js';
import { parseExposition } from '../helpers/exposition.js';

const SNAPSHOT: ProbeSnapshot = {
  state: 'quieting',
  childPid: 42,
  nowEpochMs: 1_795_325_500_000,
  uptimeS: 5,
  restarts: 1,
  jobs: { recovered: 4, dead: 1, held: 2 },
  workerDeaths: new Map([
    ['signal', 2],
    ['oom-killed', 1],
  ]),
  stop: undefined,
  signalsForwarded: new Map([
    ['SIGUSR2', 1],
    ['SIGHUP', 3],
  ]),
  zombiesReaped: 1000,
  redis: {
    connected: false,
    heartbeatFailures: 7,
    health: { state: 'refusing', reason: 'READONLY', brokenKeys: ['drain-init:stops', 'drain-init:job-deaths'] },
  },
  sidekiq: undefined,
};

const STATS: SidekiqStats = {
  processed: 120,
  failed: 3,
  scheduled: 4,
  retry: 5,
  dead: 6,
  processes: 2,
  busy: 1,
  workers: 15,
  enqueued: 8,
  queues: [
    { name: 'critical', size: 0, latencyS: 0 },
    { name: 'default', size: 7, latencyS: 12.5 },
    { name: 'broken', size: 1, latencyS: undefined },
  ],
  hosts: [
    { host: 'worker-7f9c', quiet: 1, notQuiet: 0, memoryBytes: 2048 },
    { host: 'worker-a1b2', quiet: 0, notQuiet: 2, memoryBytes: undefined },
  ],
  serving: [{ queue: 'default', processes: 3, workers: 15, busy: 1 }],
  running: [{ queue: 'default', jobs: 1, maxProcessingS: 42 }],
};

function values(text: string): Record<string, number> {
  const flat: Record<string, number> = {};
  for (const family of parseExposition(text).values()) {
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels)
        .map(([name, value]) => `${name}=${value}`)
        .join(',');
      flat[labels === '' ? family.name : `${family.name}{${labels}}`] = sample.value;
    }
  }
  return flat;
}

describe('the exposition text', () => {
  it('escapes label values and help text so that a strict parser reads them back', () => {
    const family: MetricFamily = {
      name: 'x_total',
      help: 'a \\ back\nslash',
      type: 'counter',
      samples: [{ labels: { name: 'q"uo\\te\nd' }, value: 1 }],
    };
    const text = renderExposition([family]);
    expect(text).toBe(
      '# HELP x_total a \\\\ back\\nslash\n# TYPE x_total counter\nx_total{name="q\\"uo\\\\te\\nd"} 1\n',
    );
    const parsed = parseExposition(text).get('x_total');
    expect(parsed).toEqual({
      name: 'x_total',
      help: 'a \\ back\nslash',
      type: 'counter',
      samples: [{ labels: { name: 'q"uo\\te\nd' }, value: 1 }],
    });
  });

  it('writes NaN and infinities as the format spells them', () => {
    const text = renderExposition([
      {
        name: 'g',
        help: 'h',
        type: 'gauge',
        samples: [
          { labels: { a: '1' }, value: Number.NaN },
          { labels: { a: '2' }, value: Number.POSITIVE_INFINITY },
          { labels: { a: '3' }, value: Number.NEGATIVE_INFINITY },
        ],
      },
    ]);
    expect(text.split('\n').slice(2, 5)).toEqual(['g{a="1"} NaN', 'g{a="2"} +Inf', 'g{a="3"} -Inf']);
    expect(() => parseExposition(text)).not.toThrow();
  });
});

describe('the strict parser', () => {
  it.each([
    ['a sample before HELP and TYPE', 'x 1\n'],
    ['a family without TYPE', '# HELP x h\nx 1\n'],
    ['a duplicate series', '# HELP x h\n# TYPE x gauge\nx{a="1"} 1\nx{a="1"} 2\n'],
    ['an unescaped quote', '# HELP x h\n# TYPE x gauge\nx{a="1"1"} 1\n'],
    ['an invalid escape', '# HELP x h\n# TYPE x gauge\nx{a="\\t"} 1\n'],
    ['a bad value', '# HELP x h\n# TYPE x gauge\nx 1,5\n'],
    ['a family split in two', '# HELP x h\n# TYPE x gauge\nx 1\n# HELP y h\n# TYPE y gauge\ny 1\nx{a="b"} 1\n'],
    ['no final line feed', '# HELP x h\n# TYPE x gauge\nx 1'],
    ['a blank line', '# HELP x h\n# TYPE x gauge\n\nx 1\n'],
  ])('rejects %s', (_, text) => {
    expect(() => parseExposition(text)).toThrow();
  });
});

describe('the families', () => {
  it("has drain-init's own figures, signals by name, and Redis only when it is configured", () => {
    const figures = values(renderExposition(drainInitFamilies(SNAPSHOT)));
    expect(figures).toEqual({
      'drain_init_state{state=starting}': 0,
      'drain_init_state{state=running}': 0,
      'drain_init_state{state=delaying}': 0,
      'drain_init_state{state=quieting}': 1,
      'drain_init_state{state=stopping}': 0,
      'drain_init_state{state=killing}': 0,
      'drain_init_state{state=exited}': 0,
      drain_init_child_up: 1,
      drain_init_restarts_total: 1,
      'drain_init_signals_forwarded_total{signal=SIGHUP}': 3,
      'drain_init_signals_forwarded_total{signal=SIGUSR2}': 1,
      drain_init_zombies_reaped_total: 1000,
      'drain_init_worker_deaths_total{cause=oom-killed}': 1,
      'drain_init_worker_deaths_total{cause=signal}': 2,
      drain_init_jobs_recovered_total: 4,
      drain_init_jobs_dead_total: 1,
      drain_init_jobs_held: 2,
      drain_init_redis_up: 0,
      'drain_init_redis_state{state=connecting}': 0,
      'drain_init_redis_state{state=up}': 0,
      'drain_init_redis_state{state=down}': 0,
      'drain_init_redis_state{state=refusing}': 1,
      drain_init_redis_broken_keys: 2,
      drain_init_heartbeat_failures_total: 7,
    });
    const withFleet = values(renderExposition(drainInitFamilies(SNAPSHOT, 3)));
    expect(withFleet.drain_init_stops_cut_total).toBe(3);
    const watched = values(
      renderExposition(
        drainInitFamilies({
          ...SNAPSHOT,
          sidekiq: { processes: [], jobsInFlight: 0, lastBeatEpochS: 1_795_325_488, redisAnswered: true },
        }),
      ),
    );
    expect(watched.drain_init_worker_heartbeat_age_seconds).toBe(12);
    const plain = values(
      renderExposition(drainInitFamilies({ ...SNAPSHOT, redis: undefined, childPid: undefined, state: 'exited' })),
    );
    expect(plain).not.toHaveProperty('drain_init_redis_up');
    expect(plain).toMatchObject({ drain_init_child_up: 0, 'drain_init_state{state=exited}': 1 });
  });

  it("names Sidekiq's figures as the standalone Sidekiq exporter does, and leaves out an unknown latency", () => {
    const parsed = parseExposition(renderExposition(sidekiqFamilies(STATS)));
    expect(Object.fromEntries([...parsed.values()].map((family) => [family.name, family.type]))).toEqual({
      sidekiq_processed_jobs_total: 'counter',
      sidekiq_failed_jobs_total: 'counter',
      sidekiq_workers: 'gauge',
      sidekiq_processes: 'gauge',
      sidekiq_host_processes: 'gauge',
      sidekiq_host_processes_memory_usage_bytes: 'gauge',
      sidekiq_busy_workers: 'gauge',
      sidekiq_enqueued_jobs: 'gauge',
      sidekiq_scheduled_jobs: 'gauge',
      sidekiq_retry_jobs: 'gauge',
      sidekiq_dead_jobs: 'gauge',
      sidekiq_queue_latency_seconds: 'gauge',
      sidekiq_queue_enqueued_jobs: 'gauge',
      sidekiq_queue_max_processing_time_seconds: 'gauge',
      sidekiq_queue_workers: 'gauge',
      sidekiq_queue_processes: 'gauge',
      sidekiq_queue_busy_workers: 'gauge',
      sidekiq_queue_running_jobs: 'gauge',
    });
    expect(values(renderExposition(sidekiqFamilies(STATS)))).toEqual({
      sidekiq_processed_jobs_total: 120,
      sidekiq_failed_jobs_total: 3,
      sidekiq_workers: 15,
      sidekiq_processes: 2,
      'sidekiq_host_processes{host=worker-7f9c,quiet=true}': 1,
      'sidekiq_host_processes{host=worker-a1b2,quiet=false}': 2,
      'sidekiq_host_processes_memory_usage_bytes{host=worker-7f9c}': 2048,
      sidekiq_busy_workers: 1,
      sidekiq_enqueued_jobs: 8,
      sidekiq_scheduled_jobs: 4,
      sidekiq_retry_jobs: 5,
      sidekiq_dead_jobs: 6,
      'sidekiq_queue_latency_seconds{name=critical}': 0,
      'sidekiq_queue_latency_seconds{name=default}': 12.5,
      'sidekiq_queue_enqueued_jobs{name=critical}': 0,
      'sidekiq_queue_enqueued_jobs{name=default}': 7,
      'sidekiq_queue_enqueued_jobs{name=broken}': 1,
      'sidekiq_queue_max_processing_time_seconds{name=default}': 42,
      'sidekiq_queue_workers{name=default}': 15,
      'sidekiq_queue_processes{name=default}': 3,
      'sidekiq_queue_busy_workers{name=default}': 1,
      'sidekiq_queue_running_jobs{name=default}': 1,
    });
  });
});
