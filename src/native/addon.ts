import { isSea } from 'node:sea';
import { fileURLToPath } from 'node:url';
import { ADDON_VAR, takeHandoff } from './handoff.js';

/** The system calls Node does not offer, from drain_init.c. */
export interface NativeAddon {
  /**
   * Reaps every exited child except the given pids (the ones Node waits for itself), which the SIGCHLD
   * handler protects from now on too; returns how many, the handler's since the last call included.
   */
  reapOrphans(protectedPids: readonly number[]): number;
  /** Reaps orphans in the SIGCHLD handler, which passes on to Node only a change of a protected child; call after listening for SIGCHLD. */
  reapInSignalHandler(): void;
  setChildSubreaper(): void;
  isChildSubreaper(): boolean;
  /** Lets the kernel reclaim the pages of read-only file mappings (the node executable); returns the bytes advised. */
  trimResidentSet(): number;
  /** True when fd is a terminal whose foreground process group is drain-init's own. */
  ownsTerminal(fd: number): boolean;
  /** Where a new process can exec the exec helper from (exec_helper.c): /proc/self/fd/N of a memfd. */
  execHelperPath(): string;
  /** Lets a real fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS) kill drain-init though it handles those signals when sent with kill. */
  guardFaultSignals(): void;
  /**
   * Forwards each received signal of the routes as the sent one from its signal handler, and SIGRTMIN..SIGRTMAX
   * unchanged, to the target; an empty list stops it. Call after listening for them and after guardFaultSignals.
   */
  forwardSignals(routes: readonly (readonly [received: number, sent: number])[]): void;
  /** Where forwardSignals sends: a pid, a process group as a negative number, or 0 for nowhere. */
  setForwardTarget(target: number): void;
  /** How many times the signal handler has forwarded this received signal. */
  forwardedCount(received: number): number;
}

/** Copied beside the bundle (dist/drain-init.mjs) by the build. */
const ADDON_FILE = 'drain_init.node';

let loaded: { addon: NativeAddon; path: string } | undefined;

/**
 * Loads the addon, once: every caller shares its state (signal handlers, the exec helper). `path` is the
 * file it was loaded from. A release executable loads it from the memory file its launcher made
 * (launcher.c), so no file is written anywhere, read-only root or not.
 */
export function loadAddon(): { addon: NativeAddon; path: string } {
  loaded ??= load();
  return loaded;
}

function load(): { addon: NativeAddon; path: string } {
  if (isSea()) {
    const { addonPath } = takeHandoff();
    if (addonPath === undefined)
      throw new Error(`${ADDON_VAR} is not set: the addon comes with the release launcher (npm run build:binary)`);
    return { addon: dlopen(addonPath), path: addonPath };
  }
  const path = fileURLToPath(new URL(`./${ADDON_FILE}`, import.meta.url));
  return { addon: dlopen(path), path };
}

function dlopen(path: string): NativeAddon {
  const module = { exports: {} };
  process.dlopen(module, path);
  return module.exports as NativeAddon;
}
