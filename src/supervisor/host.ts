// What drain-init sets up on its host before the first worker starts: the native addon (reaping, the
// terminal, signals Node cannot handle), the subreaper flag, its own OOM score, and a lighter resident set.
import type { Config } from '../config/parse.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { loadAddon, type NativeAddon } from '../native/addon.js';
import { OWN_OOM_SCORE, protectFromOomKiller, type OomProtection } from '../process/oom-score.js';

/** Start-up touches far more of the node executable than an idle init ever runs again. */
const TRIM_AFTER_START_MS = 2_000;

export interface Host {
  /** Undefined when it could not be loaded (logged): no reaping, no terminal hand-over. */
  readonly addon: NativeAddon | undefined;
  /** As PID 1, where the kernel lets drain-init lower its own OOM score. */
  readonly oomProtection: OomProtection | undefined;
  /** Once everything is set up: start-up touched far more of the node executable than an idle init runs again. */
  trimAfterStart(): void;
}

export function prepareHost(config: Config, clock: Clock, log: Logger): Host {
  const addon = loadNativeAddon(log);
  if (addon !== undefined) becomeReaper(addon, config, log);
  const oomProtection = process.pid === 1 ? protectFromOomKiller(OWN_OOM_SCORE, log) : undefined;
  return {
    addon,
    oomProtection,
    trimAfterStart: () => {
      if (addon !== undefined) trimLater(addon, clock, log);
    },
  };
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
  } else if (isChildSubreaper(addon, log) === false) {
    log.warn(
      'not running as PID 1 and not registered as a child subreaper: orphans will not be re-parented to drain-init; use -s or TINI_SUBREAPER',
    );
  }
}

/** Under an emulator (qemu-user) the kernel's answer may be an error: that is one warning, not a crash. */
function isChildSubreaper(addon: NativeAddon, log: Logger): boolean | undefined {
  try {
    return addon.isChildSubreaper();
  } catch (error) {
    log.warn(
      { err: (error as Error).message },
      'could not tell whether drain-init is a child subreaper: orphans may not be re-parented to drain-init; use -s or TINI_SUBREAPER',
    );
    return undefined;
  }
}

function trimLater(addon: NativeAddon, clock: Clock, log: Logger): void {
  clock.schedule(TRIM_AFTER_START_MS, () => {
    try {
      log.debug({ advisedBytes: addon.trimResidentSet() }, 'trimmed the resident set after start-up');
    } catch (error) {
      log.debug({ err: (error as Error).message }, 'could not trim the resident set');
    }
  });
}
