import { existsSync, readFileSync, statSync } from 'node:fs';
import { readOomKills } from './cgroup/oom.js';
import { formatDuration } from './config/duration.js';
import type { Config } from './config/parse.js';
import type { Logger } from './log/logger.js';
import { loadAddon, type NativeAddon } from './native/addon.js';
import { spawnChild, type Child } from './process/child.js';
import { describeSpawnFailure, exitCodeFor, remapExitCode, type ChildExit } from './process/exit-status.js';
import { SignalForwarder } from './process/forward.js';
import { endLeftoverProcesses } from './process/leftovers.js';
import { OWN_OOM_SCORE, protectFromOomKiller } from './process/oom-score.js';
import { processState } from './process/proc-state.js';
import { ZombieReaper } from './process/reaper.js';
import { parseSignal } from './process/signals.js';
import { SuspensionWatch } from './process/suspension.js';
import { startProbeServer } from './probe/server.js';
import { workerDeath } from './recovery/death.js';
import type { InstanceRecorder } from './redis/record.js';
import type { RedisSession, SessionHooks } from './redis/session.js';
import { decideRestart } from './restart/policy.js';
import { isDrained, isRegistered, type WorkerView } from './sidekiq/view.js';
import { startsStop, StopSequence, type PhaseListener, type WorkerReport } from './stop/sequence.js';
import {
  defaultSidekiqConfigFiles,
  readSidekiqCommandLine,
  readSidekiqYamlTimeout,
  resolveStopSettings,
  type SidekiqCommandLine,
  type StopSettings,
} from './stop/settings.js';
import { describePlan } from './stop/timeline.js';
import { realTimers } from './stop/timers.js';
import { VERSION } from './version.js';

const SIGKILL = parseSignal('KILL');
const SIGCONT = parseSignal('CONT');
const STDIN = 0;
/** How long a stop may wait for a fresh read of Sidekiq's data; a slower Redis leaves the last read to decide. */
const FRESH_READ_WAIT_MS = 250;
/** Start-up touches far more of the node executable than an idle init ever runs again. */
const TRIM_AFTER_START_MS = 2_000;

/** Runs the worker under drain-init until it exits (for good, with --restart); resolves to drain-init's own exit code. */
export async function supervise(config: Config, log: Logger): Promise<number> {
  const addon = loadNativeAddon(log);
  if (addon !== undefined) becomeReaper(addon, config, log);
  const oomProtection = process.pid === 1 ? protectFromOomKiller(OWN_OOM_SCORE, log) : undefined;
  let childPid: number | undefined;
  let settings = stopSettings(config, log);
  const redis = await openRedis(config, log, {
    expectSidekiq: settings.preset === 'sidekiq',
    childPid: () => childPid,
    onWorkerView: (view, previous) => followWorker(view, previous),
  });
  const recorder = redis?.recorder;
  let stopRequested: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  const sequence = new StopSequence(
    settings,
    {
      send: (signal) => signalWorker(signal),
      killGroup: () => void killWorker(),
      keepRunning: () => watch.keepRunning(),
      worker: () => (redis === undefined ? undefined : workerReport(redis.watcher.view)),
    },
    realTimers,
    log,
    (phase, plan, sinceT0Ms) => {
      stopRequested();
      recordPhase(recorder)(phase, plan, sinceT0Ms);
      if (phase === 'quieting') redis?.watcher.draining();
    },
  );
  // Without -g the stop signals go to the Sidekiq processes themselves when the child only wraps them
  // (sh -c): a shell neither passes a signal on nor survives TERM long enough for its worker to drain.
  const signalWorker = (signal: number): void => {
    const wrapped = config.processGroup
      ? []
      : (redis?.watcher.view.processes ?? []).map((process) => process.pid).filter((pid) => pid !== childPid);
    if (wrapped.length === 0) forwarder.send(signal);
    for (const pid of wrapped) forwarder.sendTo(pid, signal);
  };
  const killWorker = async (): Promise<void> => {
    await redis?.guard?.lastLook();
    forwarder.send(SIGKILL, true);
  };
  const followWorker = (view: WorkerView, previous: WorkerView): void => {
    logIdentities(log, view, previous);
    redis?.guard?.follow(view, redis.watcher.jobs);
    if (view.jobsInFlight !== previous.jobsInFlight) recorder?.update({ jobsInFlight: view.jobsInFlight });
    if (sequence.phase === 'quieting' && isDrained(view)) sequence.workerIdle();
    // The auto preset goes by the command line; a child that turns out to be Sidekiq is stopped as one.
    if (
      config.preset === 'auto' &&
      settings.preset === 'generic' &&
      view.processes.length > 0 &&
      sequence.phase === 'running'
    ) {
      settings = stopSettings(config, log, true);
      sequence.useSettings(settings);
    }
  };
  // A stop that finds the worker unregistered at the last read waits for a fresh one: a worker that
  // registered a moment ago must still be quieted, not stopped as a booting one.
  const interceptSignal = (signal: number): boolean => {
    if (
      !startsStop(signal) ||
      sequence.phase !== 'running' ||
      redis === undefined ||
      isRegistered(redis.watcher.view) !== false
    )
      return sequence.handleSignal(signal);
    const receivedAt = realTimers.now();
    const waited = new Promise((resolve) => setTimeout(resolve, FRESH_READ_WAIT_MS));
    void Promise.race([redis.watcher.poll(), waited]).then(() => sequence.handleSignal(signal, receivedAt));
    return true;
  };
  const forwarder = new SignalForwarder(
    { rewrite: config.rewrite, processGroup: config.processGroup, native: addon },
    log,
    interceptSignal,
  );
  forwarder.install();
  const watch = new SuspensionWatch(
    {
      isSuspended: () => childPid !== undefined && processState(childPid) === 'T',
      resume: () => forwarder.send(SIGCONT),
    },
    log,
    config.jobControl,
  );
  const reaper =
    addon === undefined ? undefined : new ZombieReaper(addon, log, () => (childPid === undefined ? [] : [childPid]));
  reaper?.start();
  if (addon !== undefined) trimAfterStart(addon, log);
  redis?.guard?.start();
  let restarts = 0;
  let restartPending = false;
  const probe = startProbeServer(config, log, {
    stop: sequence,
    forwarder,
    redis,
    childPid: () => childPid,
    isSidekiq: () => settings.preset === 'sidekiq',
    zombiesReaped: () => reaper?.total ?? 0,
    restarts: () => restarts,
    restartPending: () => restartPending,
    jobsRecovered: () => redis?.guard?.jobsRecovered ?? 0,
  });

  let restartsInRow = 0;
  for (;;) {
    const oomKillsBefore = readOomKills();
    const startedAt = performance.now();
    const spawn = (): Child => spawnChild(config.command, config.args, addon?.ownsTerminal(STDIN) ?? false);
    const child = oomProtection === undefined ? spawn() : oomProtection.spawning(spawn);
    childPid = child.pid;
    forwarder.attach(child.pid);
    watch.start();
    if (child.pid !== undefined) {
      log.info({ childPid: child.pid, program: config.command }, 'started child');
      recorder?.update({ state: 'running', childPid: child.pid });
      redis?.watcher.start();
    }

    const exit = await child.exited;
    watch.stop();
    childPid = undefined;
    forwarder.attach(undefined);
    const death = workerDeath(exit, {
      oomKillsBefore,
      oomKillsAfter: readOomKills(),
      killedAtDeadline: sequence.phase === 'killing',
    });
    if (death.cause === 'oom-killed')
      log.warn({ exit: describeExit(exit) }, "worker OOM-killed: the cgroup's OOM kill counter rose");
    await redis?.guard?.workerDied(death);
    const leftoverScope = { self: process.pid, childGroup: child.pid, wholeNamespace: process.pid === 1 };
    await endLeftoverProcesses(
      leftoverScope,
      { graceMs: config.leftoverGraceMs, killAt: sequence.killAt },
      (pid, signal) => forwarder.sendTo(pid, signal),
      log,
    );
    reaper?.reap();
    const decision = decideRestart(config.restart, {
      exit,
      stopRequested: sequence.phase !== 'running',
      ranMs: performance.now() - startedAt,
      restartsInRow,
    });
    if (decision.restart) {
      log.warn(
        { exit: describeExit(exit), cause: death.description, delayMs: decision.delayMs, restarts: restarts + 1 },
        `restarting the worker in ${formatDuration(decision.delayMs)} (--restart ${config.restart.policy})`,
      );
      recorder?.update({ state: 'starting', restarts: restarts + 1, lastExit: describeExit(exit) });
      restartPending = true;
      await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, decision.delayMs))]);
      restartPending = false;
    }
    if (!decision.restart || sequence.phase !== 'running') {
      sequence.finish();
      forwarder.uninstall();
      reaper?.stop();
      const status = exitCodeFor(exit);
      logExit(log, config.command, exit, status, reaper?.total ?? 0);
      const code = remapExitCode(status, config.remapExit);
      if (code !== status)
        log.info({ exitStatus: status }, `exit status ${status} counts as success (--remap-exit): exiting 0`);
      await redis?.close({ state: 'exited', lastExit: describeExit(exit) });
      probe?.close();
      return code;
    }
    restarts++;
    restartsInRow = decision.restartsInRow;
  }
}

/** Loaded only when a Redis URL is set, so a plain init never pays for the Redis client. */
async function openRedis(config: Config, log: Logger, hooks: SessionHooks): Promise<RedisSession | undefined> {
  if (config.redisUrl === undefined) return undefined;
  const { openRedisSession } = await import('./redis/session.js');
  return openRedisSession(config.redisUrl, config, log, { program: config.command, version: VERSION }, hooks);
}

function logIdentities(log: Logger, view: WorkerView, previous: WorkerView): void {
  const identities = view.processes.map((process) => process.identity);
  const before = new Set(previous.processes.map((process) => process.identity));
  if (identities.length === before.size && identities.every((identity) => before.has(identity))) return;
  if (identities.length === 0) log.info('the worker is no longer registered with Sidekiq');
  else log.info({ identities }, 'found the worker in Sidekiq');
}

function workerReport(view: WorkerView): WorkerReport | undefined {
  const registered = isRegistered(view);
  return registered === undefined ? undefined : { registered, jobsInFlight: view.jobsInFlight };
}

function recordPhase(recorder: InstanceRecorder | undefined): PhaseListener {
  return (phase, plan, sinceT0Ms) =>
    recorder?.update({ state: phase, stopPlan: describePlan(plan), deadlineInMs: plan.deadlineMs - sinceT0Ms });
}

/** `registeredAsSidekiq`: the child registered in Sidekiq's `processes`, whatever its command line says. */
function stopSettings(config: Config, log: Logger, registeredAsSidekiq = false): StopSettings {
  const commandLine = readSidekiqCommandLine(config.command, config.args);
  const isSidekiq = commandLine.isSidekiq || registeredAsSidekiq;
  const sidekiq = { ...commandLine, isSidekiq, configFile: isSidekiq ? sidekiqConfigFile(commandLine) : undefined };
  const yamlTimeoutMs = sidekiq.configFile === undefined ? undefined : readYamlTimeout(sidekiq.configFile, log);
  const settings = resolveStopSettings(config, sidekiq, yamlTimeoutMs);
  log.info(
    {
      preset: settings.preset,
      gracePeriod: formatDuration(settings.gracePeriodMs),
      shutdownTimeout: formatDuration(settings.shutdownTimeoutMs),
      shutdownTimeoutSource: settings.shutdownTimeoutSource,
    },
    registeredAsSidekiq ? 'the child registered as a Sidekiq process: stop settings now' : 'stop settings',
  );
  return settings;
}

/** The -C file, else the config file Sidekiq itself would find. */
function sidekiqConfigFile(commandLine: SidekiqCommandLine): string | undefined {
  if (commandLine.configFile !== undefined) return commandLine.configFile;
  const { requirePath } = commandLine;
  const requireDir = requirePath !== undefined && isDirectory(requirePath) ? requirePath : undefined;
  return defaultSidekiqConfigFiles(requireDir).find((file) => existsSync(file));
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function readYamlTimeout(file: string, log: Logger): number | undefined {
  try {
    return readSidekiqYamlTimeout(readFileSync(file, 'utf8'));
  } catch (error) {
    log.warn({ file, err: (error as Error).message }, 'cannot read the Sidekiq config file for its :timeout:');
    return undefined;
  }
}

function loadNativeAddon(log: Logger): NativeAddon | undefined {
  try {
    const { addon, path } = loadAddon();
    log.debug({ path }, 'native addon loaded');
    return addon;
  } catch (error) {
    log.warn({ err: (error as Error).message }, 'native addon not loaded: orphaned processes will not be reaped');
    return undefined;
  }
}

function trimAfterStart(addon: NativeAddon, log: Logger): void {
  setTimeout(() => {
    try {
      log.debug({ advisedBytes: addon.trimResidentSet() }, 'trimmed the resident set after start-up');
    } catch (error) {
      log.debug({ err: (error as Error).message }, 'could not trim the resident set');
    }
  }, TRIM_AFTER_START_MS).unref();
}

function becomeReaper(addon: NativeAddon, config: Config, log: Logger): void {
  if (process.pid === 1) return;
  if (config.subreaper) {
    try {
      addon.setChildSubreaper();
      log.debug('registered as child subreaper');
    } catch (error) {
      log.warn(
        { err: (error as Error).message },
        'could not register as a child subreaper: orphans will not be re-parented to drain-init',
      );
    }
  } else if (!addon.isChildSubreaper()) {
    log.warn(
      'not running as PID 1 and not registered as a child subreaper: orphans will not be re-parented to drain-init; use -s or TINI_SUBREAPER',
    );
  }
}

function describeExit(exit: ChildExit): string {
  switch (exit.kind) {
    case 'exited':
      return `code ${exit.code}`;
    case 'signaled':
      return `signal ${exit.signal}`;
    case 'spawn-failed':
      return `not started: ${exit.errno}`;
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
