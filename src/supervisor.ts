import type { Config } from './config/parse.js';
import type { Logger } from './log/logger.js';
import { loadAddon, type NativeAddon } from './native/addon.js';
import { spawnChild } from './process/child.js';
import { describeSpawnFailure, exitCodeFor, type ChildExit } from './process/exit-status.js';
import { SignalForwarder } from './process/forward.js';
import { ZombieReaper } from './process/reaper.js';

/** Runs the worker under drain-init until it exits; resolves to drain-init's own exit code. */
export async function supervise(config: Config, log: Logger): Promise<number> {
  const addon = loadNativeAddon(log);
  if (addon !== undefined) becomeReaper(addon, config, log);

  const forwarder = new SignalForwarder({ rewrite: config.rewrite, processGroup: config.processGroup }, log);
  forwarder.install();
  const child = spawnChild(config.command, config.args, { ownProcessGroup: true });
  forwarder.attach(child.pid);
  const reaper = addon === undefined ? undefined : new ZombieReaper(addon, log, () => (child.pid === undefined ? [] : [child.pid]));
  reaper?.start();
  if (child.pid !== undefined) log.info({ childPid: child.pid, program: config.command }, 'started child');

  const exit = await child.exited;
  forwarder.uninstall();
  reaper?.reap();
  reaper?.stop();
  const code = exitCodeFor(exit);
  logExit(log, config.command, exit, code, reaper?.total ?? 0);
  return code;
}

function loadNativeAddon(log: Logger): NativeAddon | undefined {
  try {
    return loadAddon();
  } catch (error) {
    log.warn({ err: (error as Error).message }, 'native addon not loaded: orphaned processes will not be reaped');
    return undefined;
  }
}

function becomeReaper(addon: NativeAddon, config: Config, log: Logger): void {
  if (process.pid === 1) return;
  if (config.subreaper) {
    addon.setChildSubreaper();
    log.debug('registered as child subreaper');
  } else if (!addon.isChildSubreaper()) {
    log.warn('not running as PID 1 and not registered as a child subreaper: orphans will not be re-parented to drain-init; use -s or TINI_SUBREAPER');
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
