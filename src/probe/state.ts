// What the probe endpoint knows at one instant, and what /livez, /readyz and /status make of it; no I/O.
import { formatDuration } from '../config/duration.js';
import type { HealthView } from '../redis/health.js';
import { beatAgeS, type WorkerView } from '../sidekiq/view.js';
import type { StopPhase } from '../stop/sequence.js';

/** The stop phase while the worker runs, `starting` while it is to be restarted, `exited` once it is gone. */
export type ProbeState = 'starting' | StopPhase | 'exited';

export const PROBE_STATES: readonly ProbeState[] = [
  'starting',
  'running',
  'delaying',
  'quieting',
  'stopping',
  'killing',
  'exited',
];

export interface StopInfo {
  /** `TSTP now, TERM at +30.0 s, KILL at +58.0 s, deadline at +60.0 s` */
  readonly plan: string;
  /** The platform's SIGKILL, epoch ms. */
  readonly deadlineEpochMs: number;
}

/** What the job guard did; zero without a Redis URL. */
export interface JobCounts {
  /** Jobs of dead workers put back in their queues. */
  readonly recovered: number;
  /** Jobs moved to Sidekiq's Dead set: their workers died too often while they ran. */
  readonly dead: number;
  /** Jobs held in the record, one death short of the Dead set, waiting to go back alone. */
  readonly held: number;
}

/** Redis as drain-init's connection finds it. */
export interface RedisReport {
  /** Reads and writes go through (the state is up). */
  readonly connected: boolean;
  readonly heartbeatFailures: number;
  readonly health: HealthView;
}

export interface ProbeSnapshot {
  readonly state: ProbeState;
  /** The running worker; undefined between its exit and its restart, and once it has exited for good. */
  readonly childPid: number | undefined;
  readonly nowEpochMs: number;
  readonly uptimeS: number;
  readonly restarts: number;
  readonly jobs: JobCounts;
  /** The worker's ends that were not clean, by cause (death.ts: oom-killed, signal, exit-code ...). */
  readonly workerDeaths: ReadonlyMap<string, number>;
  /** While a stop is under way. */
  readonly stop: StopInfo | undefined;
  readonly signalsForwarded: ReadonlyMap<string, number>;
  readonly zombiesReaped: number;
  /** Undefined without a Redis URL. */
  readonly redis: RedisReport | undefined;
  /** Undefined unless the worker is a Sidekiq watched through Redis. */
  readonly sidekiq: WorkerView | undefined;
}

export interface Verdict {
  readonly ok: boolean;
  /** One line. */
  readonly reason: string;
}

/** Without a worker: restarting it is drain-init's own business, so liveness holds while it does. */
function noWorker(state: ProbeState, forLiveness: boolean): Verdict {
  if (state === 'starting') return { ok: forLiveness, reason: 'starting: the worker is about to be restarted' };
  return { ok: false, reason: 'the worker has exited' };
}

/**
 * Alive while the worker runs or is about to be restarted. A Sidekiq worker whose heartbeat is older than `maxBeatAgeMs` is not,
 * but only while Redis answers (an outage would fail every pod, and restarting them mends nothing) and
 * only before a stop begins (restarting a draining pod would lose its jobs).
 */
export function liveness(snapshot: ProbeSnapshot, maxBeatAgeMs: number): Verdict {
  if (snapshot.childPid === undefined) return noWorker(snapshot.state, true);
  const view = snapshot.sidekiq;
  const ageS = view === undefined ? undefined : beatAgeS(view, snapshot.nowEpochMs / 1000);
  if (view === undefined || ageS === undefined) return { ok: true, reason: 'alive' };
  if (snapshot.state !== 'running')
    return { ok: true, reason: `alive, ${snapshot.state}: the heartbeat is not checked during a stop` };
  if (!view.redisAnswered)
    return { ok: true, reason: 'alive; Redis does not answer, so the Sidekiq heartbeat is not checked' };
  if (ageS * 1000 > maxBeatAgeMs)
    return {
      ok: false,
      reason: `the worker's last Sidekiq heartbeat is ${Math.round(ageS)} s old, more than --max-beat-age ${formatDuration(maxBeatAgeMs)}`,
    };
  return { ok: true, reason: 'alive' };
}

/** Ready while the worker runs, no stop is under way and a Sidekiq worker has beaten and is not quiet. */
export function readiness(snapshot: ProbeSnapshot): Verdict {
  if (snapshot.childPid === undefined) return noWorker(snapshot.state, false);
  if (snapshot.state !== 'running')
    return { ok: false, reason: `${snapshot.state}: drain-init is stopping the worker` };
  const view = snapshot.sidekiq;
  if (view === undefined) return { ok: true, reason: 'ready' };
  if (view.lastBeatEpochS === undefined)
    return { ok: false, reason: 'waiting for the first Sidekiq heartbeat of the worker' };
  if (view.processes.length === 0)
    return { ok: false, reason: 'no Sidekiq process of the worker has a fresh heartbeat' };
  const quiet = view.processes.find((process) => process.quiet);
  if (quiet !== undefined)
    return { ok: false, reason: `Sidekiq process ${quiet.identity} is quiet: it takes no new job` };
  return { ok: true, reason: 'ready' };
}

/** The /status document: counts and states only, never a job's arguments (they can hold personal data). */
export function statusDocument(snapshot: ProbeSnapshot): Record<string, unknown> {
  const { stop, redis, sidekiq } = snapshot;
  const nowEpochS = snapshot.nowEpochMs / 1000;
  return {
    state: snapshot.state,
    childPid: snapshot.childPid ?? null,
    uptimeSeconds: roundTenths(snapshot.uptimeS),
    restarts: snapshot.restarts,
    ...(stop === undefined
      ? {}
      : {
          stop: {
            plan: stop.plan,
            deadline: new Date(stop.deadlineEpochMs).toISOString(),
            deadlineInSeconds: roundTenths(Math.max(0, (stop.deadlineEpochMs - snapshot.nowEpochMs) / 1000)),
          },
        }),
    ...(redis === undefined
      ? {}
      : {
          redisConnected: redis.connected,
          redis: {
            state: redis.health.state,
            reason: redis.health.reason ?? null,
            brokenKeys: redis.health.brokenKeys,
          },
        }),
    ...(sidekiq === undefined
      ? {}
      : {
          sidekiq: {
            processes: sidekiq.processes.map((process) => ({
              identity: process.identity,
              busy: process.busy,
              quiet: process.quiet,
              beatAgeSeconds: roundTenths(Math.max(0, nowEpochS - process.beatEpochS)),
            })),
            jobsInFlight: sidekiq.jobsInFlight,
            lastBeatAgeSeconds: ageOrNull(beatAgeS(sidekiq, nowEpochS)),
            redisAnswered: sidekiq.redisAnswered,
          },
        }),
  };
}

function ageOrNull(ageS: number | undefined): number | null {
  return ageS === undefined ? null : roundTenths(ageS);
}

function roundTenths(value: number): number {
  return Math.round(value * 10) / 10;
}
