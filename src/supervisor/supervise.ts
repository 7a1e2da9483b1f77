// The composition root: builds drain-init's parts, lists what follows the worker's life, and hands them to
// the run loop (run.ts). It holds no rule of its own: each rule lives in the folder that owns it.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Config } from '../config/parse.js';
import { systemClock, type Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import type { Child } from '../process/child.js';
import {
  describeExit,
  describeSpawnFailure,
  exitCodeFor,
  remapExitCode,
  type ChildExit,
} from '../process/exit-status.js';
import { endLeftoverProcesses } from '../process/leftovers.js';
import { isRunning, processState } from '../process/proc.js';
import { parseSignal } from '../process/signals.js';
import { SuspensionWatch } from '../process/suspension.js';
import { startProbeServer } from '../probe/server.js';
import { defaultInstanceId } from '../record/instance-id.js';
import { DEATH_CAUSES, type DeathCause } from '../recovery/death.js';
import type { SupervisedProcesses } from '../recovery/guard.js';
import { sidekiqHostname } from '../sidekiq/match.js';
import { SidekiqWorker } from '../sidekiq/worker.js';
import { planEndpoint, type EndpointPlan } from '../sidekiq/worker-url.js';
import { StopSequence } from '../stop/sequence.js';
import type { StopSettings } from '../stop/settings.js';
import { describePlan } from '../stop/timeline.js';
import type { WorkerControl } from '../stop/worker.js';
import { VERSION } from '../version.js';
import type { EarlyStart } from './early.js';
import type { Endpoint } from './endpoint.js';
import type { RedisParts } from './redis-parts.js';
import { runWorker, type RunObserver } from './run.js';
import { StopSettingsSource } from './stop-settings.js';

const SIGKILL = parseSignal('KILL');
const SIGCONT = parseSignal('CONT');

/** The worker as the parts see it now. */
interface WorkerState {
  /** Undefined before it starts, between its exit and its restart, and once it has exited for good. */
  pid: number | undefined;
  restarts: number;
  /** Its ends that were not clean, by cause. */
  readonly deaths: Map<DeathCause, number>;
  /** It has exited and will be restarted. */
  restartPending: boolean;
}

/**
 * Runs the worker under drain-init until it exits (for good, with --restart); resolves to drain-init's own
 * exit code. `early` is what was set up before this module was loaded: the worker may be running already.
 */
export async function supervise(
  config: Config,
  log: Logger,
  early: EarlyStart,
  clock: Clock = systemClock,
): Promise<number> {
  const { host, forwarder, reaper } = early;
  const worker: WorkerState = {
    pid: undefined,
    restarts: 0,
    // Every cause from the start, so that /metrics shows each at 0 before the first death.
    deaths: new Map(DEATH_CAUSES.filter((cause) => cause !== 'clean').map((cause) => [cause, 0])),
    restartPending: false,
  };
  // A stop before the platform's API answers uses the platform's default grace period.
  const stopSettings = new StopSettingsSource(config, log, clock);
  const supervised = { childPid: () => worker.pid, alive: isRunning };
  const plan = endpointPlan(config, stopSettings.settings, log);
  const redis = await assembleRedis(config, stopSettings.settings, supervised, plan.kind === 'relay', clock, log);
  const endpoint =
    redis === undefined || plan.kind !== 'relay'
      ? undefined
      : await openEndpoint(plan, config, redis, supervised, clock, log);

  const suspension = new SuspensionWatch(
    {
      isSuspended: () => worker.pid !== undefined && processState(worker.pid) === 'T',
      resume: () => forwarder.send(SIGCONT),
    },
    log,
    config.jobControl,
  );
  const child: WorkerControl = {
    signal: (signal) => void forwarder.send(signal),
    kill: () => void forwarder.send(SIGKILL, true),
    keepRunning: () => suspension.keepRunning(),
    report: () => undefined,
  };
  const sidekiq =
    redis === undefined
      ? undefined
      : new SidekiqWorker(
          child,
          redis.watcher,
          {
            processGroup: config.processGroup,
            childPid: () => worker.pid,
            sendTo: (pid, signal) => void forwarder.sendTo(pid, signal),
            beforeKill: () => redis.guard()?.lastLook() ?? Promise.resolve(),
            jobsInFlight: () => redis.guard()?.jobsInFlight,
          },
          clock,
          log,
        );
  const sequence = new StopSequence(stopSettings.settings, sidekiq ?? child, clock, log);
  const stopped = new Promise<void>((resolve) => sequence.onStopRequested(resolve));
  sequence.onStopRequested(() => redis?.stops.begin(stopSettings.settings.gracePeriodMs));
  // The record knows no stop delay: the worker runs on through it, and the record's stopPlan says it.
  sequence.onPhase((phase, plan, sinceT0Ms) =>
    redis?.recorder.update({
      state: phase === 'delaying' ? 'running' : phase,
      stopPlan: describePlan(plan),
      deadlineInMs: plan.deadlineMs - sinceT0Ms,
    }),
  );
  sequence.onPhase((phase) => {
    if (phase === 'quieting') redis?.watcher.draining();
  });
  sidekiq?.onDrained(() => sequence.workerIdle());
  sidekiq?.onRegistered(() => {
    if (stopSettings.learnSidekiq()) sequence.useSettings(stopSettings.settings);
  });
  const intercept = (signal: number): boolean => {
    if (signal !== config.restartSignal) return sequence.handleSignal(signal);
    if (worker.pid === undefined) log.info({ signal }, 'received the restart signal: no worker runs');
    else sequence.restart(signal);
    return true;
  };

  host.trimAfterStart();
  const probe = startProbeServer(config, log, {
    stop: sequence,
    forwarder,
    childPid: () => worker.pid,
    restartPending: () => worker.restartPending,
    zombiesReaped: () => reaper?.total ?? 0,
    restarts: () => worker.restarts,
    jobs: () => {
      const guard = redis?.guard();
      return { recovered: guard?.jobsRecovered ?? 0, dead: guard?.jobsDead ?? 0, held: guard?.jobsHeld ?? 0 };
    },
    workerDeaths: () => worker.deaths,
    redis:
      redis === undefined
        ? undefined
        : () => ({
            connected: redis.connection.available,
            heartbeatFailures: redis.recorder.heartbeatFailures,
            health: redis.connection.health,
          }),
    sidekiq: () => {
      const view = stopSettings.settings.preset === 'sidekiq' ? redis?.watcher.view : undefined;
      const jobsInFlight = redis?.guard()?.jobsInFlight;
      return view === undefined || jobsInFlight === undefined ? view : { ...view, jobsInFlight };
    },
    sidekiqStats: () => (stopSettings.settings.preset === 'sidekiq' ? redis?.stats.get() : undefined),
    stopsCut: redis === undefined ? undefined : () => redis.stops.count(),
    clock,
  });

  const observers: RunObserver[] = [
    {
      started(pid) {
        sequence.restarted();
        stopSettings.readPlatform(
          () => sequence.phase !== 'running',
          (settings) => sequence.useSettings(settings),
        );
        if (worker.restartPending) worker.restarts++;
        worker.restartPending = false;
        worker.pid = pid;
        forwarder.attach(pid);
        if (pid !== undefined) log.info({ childPid: pid, program: config.command }, 'started child');
        suspension.start();
      },
      died(death, exit) {
        suspension.stop();
        worker.pid = undefined;
        forwarder.attach(undefined);
        if (death.cause !== 'clean') worker.deaths.set(death.cause, (worker.deaths.get(death.cause) ?? 0) + 1);
        if (death.cause === 'oom-killed') {
          log.warn({ exit: describeExit(exit) }, "worker OOM-killed: the cgroup's OOM kill counter rose");
        }
      },
      restarting() {
        worker.restartPending = true;
      },
    },
    ...(redis === undefined ? [] : redisObservers(redis)),
    // The signals held since drain-init's start are dealt with once every part knows the worker.
    { started: () => forwarder.takeOver(intercept) },
  ];

  const exit = await runWorker({
    first: early.first,
    spawn: () => early.spawn(endpoint?.env),
    observers,
    endLeftovers: async (ended: Child) => {
      const scope = { self: process.pid, childGroup: ended.pid, wholeNamespace: process.pid === 1 };
      const times = { graceMs: config.leftoverGraceMs, killAt: sequence.killAt };
      await endLeftoverProcesses(scope, times, (pid, signal) => forwarder.sendTo(pid, signal), clock, log);
      reaper?.reap();
    },
    restart: config.restart,
    stopRequested: () => sequence.stopRequested,
    restartRequested: () => sequence.restarting,
    stopped,
    killedAtDeadline: () => sequence.phase === 'killing',
    clock,
    log,
  });

  sequence.finish();
  forwarder.uninstall();
  reaper?.stop();
  const status = exitCodeFor(exit);
  logExit(log, config.command, exit, status, reaper?.total ?? 0);
  const code = remapExitCode(status, config.remapExit);
  if (code !== status)
    log.info({ exitStatus: status }, `exit status ${status} counts as success (--remap-exit): exiting 0`);
  await endpoint?.close();
  // Drain-init's own kill step came: the stop ran out of the platform's time.
  await redis?.stops.end(sequence.stopRequested && sequence.phase === 'killing');
  await redis?.close({ state: 'exited', lastExit: describeExit(exit) });
  probe?.close();
  return code;
}

/** The record follows the worker's starts and restarts; the watcher looks for each new worker; the guard recovers a dead one's jobs. */
function redisObservers(redis: RedisParts): RunObserver[] {
  return [
    {
      started(pid) {
        if (pid === undefined) return;
        redis.recorder.update({ state: 'running', childPid: pid });
        redis.watcher.start();
      },
      restarting(restart, exit) {
        redis.recorder.update({ state: 'starting', restarts: restart, lastExit: describeExit(exit) });
      },
    },
    { died: (death) => redis.guard()?.workerDied(death) },
  ];
}

/** Whether the worker's Redis connections go through drain-init's endpoint; why not, where the user can mend it. */
function endpointPlan(config: Config, settings: StopSettings, log: Logger): EndpointPlan {
  if (config.redis === undefined) return { kind: 'none' };
  const plan = planEndpoint({
    wanted: config.redisEndpoint && config.recovery,
    sidekiq: settings.preset === 'sidekiq',
    redis: config.redis,
    env: process.env,
  });
  if (plan.kind === 'none' && plan.reason !== undefined) log.warn(`no Redis endpoint for the worker: ${plan.reason}`);
  return plan;
}

/** The endpoint's module is loaded only for a Sidekiq worker that uses it. */
async function openEndpoint(
  plan: Extract<EndpointPlan, { kind: 'relay' }>,
  config: Config,
  parts: RedisParts,
  supervised: SupervisedProcesses,
  clock: Clock,
  log: Logger,
): Promise<Endpoint | undefined> {
  if (config.redis === undefined) return undefined;
  const { startEndpoint } = await import('./endpoint.js');
  return startEndpoint(plan, {
    redis: config.redis,
    prefix: config.redisPrefix,
    parts,
    hostname: sidekiqHostname(process.env, hostname()),
    childPid: supervised.childPid,
    clock,
    log,
  });
}

/** Loaded only when a Redis URL is set, so a plain init never pays for the Redis client. */
async function assembleRedis(
  config: Config,
  settings: StopSettings,
  supervised: SupervisedProcesses,
  endpoint: boolean,
  clock: Clock,
  log: Logger,
): Promise<RedisParts | undefined> {
  if (config.redis === undefined) return undefined;
  const { assembleRedisParts } = await import('./redis-parts.js');
  return assembleRedisParts(config.redis, config, {
    identity: { program: config.command, version: VERSION },
    requestedId: config.instanceId ?? defaultInstanceId(process.env, hostname(), readMountinfo()),
    expectSidekiq: settings.preset === 'sidekiq',
    supervised,
    endpoint,
    clock,
    log,
  });
}

function readMountinfo(): string {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return '';
  }
}

function logExit(log: Logger, command: string, exit: ChildExit, code: number, zombiesReaped: number): void {
  switch (exit.kind) {
    case 'exited':
      log.info({ exitCode: exit.code, zombiesReaped }, 'child exited');
      break;
    case 'signaled':
      log.info({ signal: exit.signal, exitCode: code, zombiesReaped }, 'child killed by signal');
      break;
    case 'spawn-failed':
      log.error({ errno: exit.errno, exitCode: code }, describeSpawnFailure(command, exit.errno));
      break;
  }
}
