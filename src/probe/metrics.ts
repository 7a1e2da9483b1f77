// The /metrics families: drain-init's own, then Sidekiq's under the names of the standalone Sidekiq
// Prometheus exporter, so its dashboards and alerts work unchanged.
import type { MetricFamily, Sample } from './exposition.js';
import type { SidekiqStats } from '../sidekiq/stats.js';
import { REDIS_STATES } from '../redis/health.js';
import { beatAgeS } from '../sidekiq/view.js';
import { PROBE_STATES, type ProbeSnapshot } from './state.js';

/** `stopsCut`: the fleet's count from Redis, when it could be read. */
export function drainInitFamilies(snapshot: ProbeSnapshot, stopsCut?: number): MetricFamily[] {
  const families: MetricFamily[] = [
    gauge(
      'drain_init_state',
      'The state of drain-init: 1 for the current one.',
      PROBE_STATES.map((state) => ({ labels: { state }, value: state === snapshot.state ? 1 : 0 })),
    ),
    gauge('drain_init_child_up', '1 while the worker runs.', [{ value: snapshot.childPid === undefined ? 0 : 1 }]),
    counter('drain_init_restarts_total', 'Times the worker was restarted.', snapshot.restarts),
    {
      name: 'drain_init_signals_forwarded_total',
      help: 'Signals forwarded to the worker, by the name sent.',
      type: 'counter',
      samples: [...snapshot.signalsForwarded]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([signal, count]) => ({ labels: { signal }, value: count })),
    },
    counter('drain_init_zombies_reaped_total', 'Orphaned processes reaped.', snapshot.zombiesReaped),
    {
      name: 'drain_init_worker_deaths_total',
      help: 'Ends of the worker that were not clean, by cause: oom-killed, killed-at-deadline, signal, exit-code, not-started.',
      type: 'counter',
      samples: [...snapshot.workerDeaths]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([cause, count]) => ({ labels: { cause }, value: count })),
    },
    counter(
      'drain_init_jobs_recovered_total',
      'Jobs of a killed worker put back in their queue.',
      snapshot.jobs.recovered,
    ),
    counter(
      'drain_init_jobs_dead_total',
      "Jobs moved to Sidekiq's Dead set because the workers running them died too often.",
      snapshot.jobs.dead,
    ),
    gauge('drain_init_jobs_held', 'Jobs one worker death short of the Dead set, held to go back one at a time.', [
      { value: snapshot.jobs.held },
    ]),
  ];
  if (snapshot.redis !== undefined) {
    families.push(
      gauge('drain_init_redis_up', "1 while Redis is connected and takes drain-init's reads and writes.", [
        { value: snapshot.redis.connected ? 1 : 0 },
      ]),
      gauge(
        'drain_init_redis_state',
        'The state of Redis as drain-init finds it, 1 for the current one: connecting, up, down (no connection), refusing (it answers but refuses writes: READONLY, OOM, NOAUTH ...).',
        REDIS_STATES.map((state) => ({ labels: { state }, value: state === snapshot.redis?.health.state ? 1 : 0 })),
      ),
      gauge(
        'drain_init_redis_broken_keys',
        'Keys drain-init uses that hold another type than drain-init keeps there (WRONGTYPE): /status names them.',
        [{ value: snapshot.redis.health.brokenKeys.length }],
      ),
      counter(
        'drain_init_heartbeat_failures_total',
        "Beats of drain-init's Redis record that were not written.",
        snapshot.redis.heartbeatFailures,
      ),
    );
  }
  if (stopsCut !== undefined)
    families.push(
      counter(
        'drain_init_stops_cut_total',
        "Platform stops of the whole fleet that ran out of time: drain-init's kill step came, or the platform killed it first. From Redis, the same on every pod.",
        stopsCut,
      ),
    );
  const beatAge = snapshot.sidekiq === undefined ? undefined : beatAgeS(snapshot.sidekiq, snapshot.nowEpochMs / 1000);
  if (beatAge !== undefined)
    families.push(
      gauge('drain_init_worker_heartbeat_age_seconds', "Seconds since the Sidekiq worker's last heartbeat in Redis.", [
        { value: beatAge },
      ]),
    );
  return families;
}

/** Every family of the exporter's standard set, in its order, with its names, types and labels. */
export function sidekiqFamilies(stats: SidekiqStats): MetricFamily[] {
  const byQueue = <T>(items: readonly T[], queue: (item: T) => string, value: (item: T) => number | undefined) =>
    items.flatMap((item) => {
      const figure = value(item);
      return figure === undefined ? [] : [{ labels: { name: queue(item) }, value: figure }];
    });
  const queues = (value: (queue: SidekiqStats['queues'][number]) => number | undefined): Sample[] =>
    byQueue(stats.queues, (queue) => queue.name, value);
  const serving = (value: (queue: SidekiqStats['serving'][number]) => number): Sample[] =>
    byQueue(stats.serving, (queue) => queue.queue, value);
  return [
    counter('sidekiq_processed_jobs_total', 'The total number of processed jobs.', stats.processed),
    counter('sidekiq_failed_jobs_total', 'The total number of failed jobs.', stats.failed),
    gauge('sidekiq_workers', 'The number of workers across all the processes.', [{ value: stats.workers }]),
    gauge('sidekiq_processes', 'The number of processes.', [{ value: stats.processes }]),
    gauge(
      'sidekiq_host_processes',
      'The number of processes running on the host.',
      stats.hosts.flatMap((host) =>
        (
          [
            ['true', host.quiet],
            ['false', host.notQuiet],
          ] as const
        )
          .filter(([, count]) => count > 0)
          .map(([quiet, count]) => ({ labels: { host: host.host, quiet }, value: count })),
      ),
    ),
    gauge(
      'sidekiq_host_processes_memory_usage_bytes',
      'The real memory (resident set) size of the processes running on the host.',
      stats.hosts.flatMap((host) =>
        host.memoryBytes === undefined ? [] : [{ labels: { host: host.host }, value: host.memoryBytes }],
      ),
    ),
    gauge('sidekiq_busy_workers', 'The number of workers performing the job.', [{ value: stats.busy }]),
    gauge('sidekiq_enqueued_jobs', 'The number of enqueued jobs.', [{ value: stats.enqueued }]),
    gauge('sidekiq_scheduled_jobs', 'The number of jobs scheduled for a future execution.', [
      { value: stats.scheduled },
    ]),
    gauge('sidekiq_retry_jobs', 'The number of jobs scheduled for the next try.', [{ value: stats.retry }]),
    gauge('sidekiq_dead_jobs', 'The number of jobs being dead.', [{ value: stats.dead }]),
    gauge(
      'sidekiq_queue_latency_seconds',
      'The number of seconds between oldest job being pushed to the queue and current time.',
      queues((queue) => queue.latencyS),
    ),
    gauge(
      'sidekiq_queue_enqueued_jobs',
      'The number of enqueued jobs in the queue.',
      queues((queue) => queue.size),
    ),
    gauge(
      'sidekiq_queue_max_processing_time_seconds',
      'The number of seconds between oldest job of the queue being executed and current time.',
      byQueue(
        stats.running,
        (queue) => queue.queue,
        (queue) => queue.maxProcessingS,
      ),
    ),
    gauge(
      'sidekiq_queue_workers',
      'The number of workers serving the queue.',
      serving((queue) => queue.workers),
    ),
    gauge(
      'sidekiq_queue_processes',
      'The number of processes serving the queue.',
      serving((queue) => queue.processes),
    ),
    gauge(
      'sidekiq_queue_busy_workers',
      'The number of workers performing the job for the queue.',
      serving((queue) => queue.busy),
    ),
    // drain-init's own: the exporter's busy workers of a queue count every busy thread of the processes serving it.
    gauge(
      'sidekiq_queue_running_jobs',
      'The number of jobs of the queue being performed.',
      byQueue(
        stats.running,
        (queue) => queue.queue,
        (queue) => queue.jobs,
      ),
    ),
  ];
}

function gauge(name: string, help: string, samples: Sample[]): MetricFamily {
  return { name, help, type: 'gauge', samples };
}

function counter(name: string, help: string, value: number): MetricFamily {
  return { name, help, type: 'counter', samples: [{ value }] };
}
