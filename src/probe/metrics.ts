// The /metrics families: drain-init's own, then Sidekiq's under the names of the standalone Sidekiq
// Prometheus exporter, so its dashboards and alerts work unchanged.
import type { MetricFamily, Sample } from './exposition.js';
import type { SidekiqStats } from '../sidekiq/stats.js';
import { PROBE_STATES, type ProbeSnapshot } from './state.js';

export function drainInitFamilies(snapshot: ProbeSnapshot): MetricFamily[] {
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
    counter(
      'drain_init_jobs_recovered_total',
      'Jobs of a killed worker put back in their queue.',
      snapshot.jobsRecovered,
    ),
  ];
  if (snapshot.redis !== undefined) {
    families.push(
      gauge('drain_init_redis_up', '1 while Redis is connected and takes commands.', [
        { value: snapshot.redis.connected ? 1 : 0 },
      ]),
      counter(
        'drain_init_heartbeat_failures_total',
        "Beats of drain-init's Redis record that were not written.",
        snapshot.redis.heartbeatFailures,
      ),
    );
  }
  return families;
}

export function sidekiqFamilies(stats: SidekiqStats): MetricFamily[] {
  const byQueue = (value: (queue: SidekiqStats['queues'][number]) => number | undefined): Sample[] =>
    stats.queues.flatMap((queue) => {
      const figure = value(queue);
      return figure === undefined ? [] : [{ labels: { name: queue.name }, value: figure }];
    });
  return [
    counter('sidekiq_processed_jobs_total', 'The total number of processed jobs.', stats.processed),
    counter('sidekiq_failed_jobs_total', 'The total number of failed jobs.', stats.failed),
    gauge('sidekiq_busy_workers', 'The number of workers performing a job.', [{ value: stats.busy }]),
    gauge('sidekiq_processes', 'The number of Sidekiq processes.', [{ value: stats.processes }]),
    gauge('sidekiq_scheduled_jobs', 'The number of jobs scheduled for later execution.', [{ value: stats.scheduled }]),
    gauge('sidekiq_retry_jobs', 'The number of failed jobs waiting to be retried.', [{ value: stats.retry }]),
    gauge('sidekiq_dead_jobs', 'The number of jobs exceeding their retry count.', [{ value: stats.dead }]),
    gauge(
      'sidekiq_queue_enqueued_jobs',
      'The number of enqueued jobs in the queue.',
      byQueue((queue) => queue.size),
    ),
    gauge(
      'sidekiq_queue_latency_seconds',
      'The number of seconds the oldest job in the queue has waited.',
      byQueue((queue) => queue.latencyS),
    ),
  ];
}

function gauge(name: string, help: string, samples: Sample[]): MetricFamily {
  return { name, help, type: 'gauge', samples };
}

function counter(name: string, help: string, value: number): MetricFamily {
  return { name, help, type: 'counter', samples: [{ value }] };
}
