import { readFileSync } from 'node:fs';
import { formatDuration } from './config/duration.js';
import type { Config } from './config/parse.js';
import type { Logger } from './log/logger.js';
import { loadAddon, type NativeAddon } from './native/addon.js';
import { spawnChild } from './process/child.js';
import { describeSpawnFailure, exitCodeFor, type ChildExit } from './process/exit-status.js';
import { SignalForwarder } from './process/forward.js';
import { processState } from './process/proc-state.js';
import { ZombieReaper } from './process/reaper.js';
import { parseSignal } from './process/signals.js';
import type { InstanceRecorder } from './redis/record.js';
import { StopSequence, type PhaseListener } from './stop/sequence.js';
import { readSidekiqCommandLine, readSidekiqYamlTimeout, resolveStopSettings, type StopSettings } from './stop/settings.js';
import { describePlan } from './stop/timeline.js';
import { realTimers } from './stop/timers.js';
import { VERSION } from './version.js';

const SIGKILL = parseSignal('KILL');
/** Start-up touches far more of the node executable than an idle init ever runs again. */
const TRIM_AFTER_START_MS = 2_000;

/** Runs the worker under drain-init until it exits; resolves to drain-init's own exit code. */
export async function supervise(config: Config, log: Logger): Promise<number> {
  const addon = loadNativeAddon(log);
  if (addon !== undefined) becomeReaper(addon, config, log);
  const recorder = await startRecorder(config, log);

  let childPid: number | undefined;
  const sequence = new StopSequence(
    stopSettings(config, log),
    {
      send: (signal) => forwarder.send(signal),
      killGroup: () => forwarder.send(SIGKILL, true),
      isSuspended: () => childPid !== undefined && processState(childPid) === 'T',
    },
    realTimers,
    log,
    recordPhase(recorder),
  );
  const forwarder = new SignalForwarder({ rewrite: config.rewrite, processGroup: config.processGroup }, log, (signal) => sequence.handleSignal(signal));
  forwarder.install();
  const child = spawnChild(config.command, config.args);
  childPid = child.pid;
  forwarder.attach(child.pid);
  const reaper = addon === undefined ? undefined : new ZombieReaper(addon, log, () => (child.pid === undefined ? [] : [child.pid]));
  reaper?.start();
  if (addon !== undefined) trimAfterStart(addon, log);
  if (child.pid !== undefined) {
    log.info({ childPid: child.pid, program: config.command }, 'started child');
    recorder?.update({ state: 'running', childPid: child.pid });
  }

  const exit = await child.exited;
  sequence.finish();
  forwarder.uninstall();
  reaper?.reap();
  reaper?.stop();
  const code = exitCodeFor(exit);
  logExit(log, config.command, exit, code, reaper?.total ?? 0);
  await recorder?.close({ state: 'exited', lastExit: describeExit(exit) });
  return code;
}

/** Loaded only when a Redis URL is set, so a plain init never pays for the Redis client. */
async function startRecorder(config: Config, log: Logger): Promise<InstanceRecorder | undefined> {
  if (config.redisUrl === undefined) return undefined;
  const { startInstanceRecorder } = await import('./redis/record.js');
  return startInstanceRecorder(config, log, { program: config.command, version: VERSION });
}

function recordPhase(recorder: InstanceRecorder | undefined): PhaseListener {
  return (phase, plan, sinceT0Ms) => recorder?.update({ state: phase, stopPlan: describePlan(plan), deadlineInMs: plan.deadlineMs - sinceT0Ms });
}

function stopSettings(config: Config, log: Logger): StopSettings {
  const sidekiq = readSidekiqCommandLine(config.command, config.args);
  const yamlTimeoutMs = sidekiq.configFile === undefined ? undefined : readYamlTimeout(sidekiq.configFile, log);
  const settings = resolveStopSettings(config, sidekiq, yamlTimeoutMs);
  log.info(
    {
      preset: settings.preset,
      gracePeriod: formatDuration(settings.gracePeriodMs),
      shutdownTimeout: formatDuration(settings.shutdownTimeoutMs),
      shutdownTimeoutSource: settings.shutdownTimeoutSource,
    },
    'stop settings',
  );
  return settings;
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
    return loadAddon();
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
      log.warn({ err: (error as Error).message }, 'could not register as a child subreaper: orphans will not be re-parented to drain-init');
    }
  } else if (!addon.isChildSubreaper()) {
    log.warn('not running as PID 1 and not registered as a child subreaper: orphans will not be re-parented to drain-init; use -s or TINI_SUBREAPER');
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
