import { closeSync } from 'node:fs';

/**
 * What the release launcher (launcher.c) leaves in the environment for Node, taken out before the worker
 * could inherit it: the addon's memory file and, in the standalone build, the preload of its libraries
 * with the caller's own LD_PRELOAD kept aside.
 */
export const ADDON_VAR = '_DRAIN_INIT_ADDON';
export const SAVED_PRELOAD_VAR = '_DRAIN_INIT_LD_PRELOAD';

export interface Handoff {
  /** Where the launcher put the native addon (/proc/self/fd/N). */
  readonly addonPath: string | undefined;
  /** The memory files of the preloaded libraries: mapped by now, their descriptors can go. */
  readonly libraryFds: readonly number[];
  /** The environment as the caller gave it: undefined deletes the variable. */
  readonly restore: Readonly<Record<string, string | undefined>>;
}

/** Reads the launcher's variables; the environment of a drain-init not started by the launcher gives nothing. */
export function readHandoff(env: NodeJS.ProcessEnv): Handoff {
  const restore: Record<string, string | undefined> = {};
  const addonPath = env[ADDON_VAR];
  if (addonPath !== undefined) restore[ADDON_VAR] = undefined;
  const saved = env[SAVED_PRELOAD_VAR];
  const libraryFds: number[] = [];
  if (saved !== undefined) {
    for (const match of (env.LD_PRELOAD ?? '').matchAll(/\/proc\/self\/fd\/(\d+)/g)) libraryFds.push(Number(match[1]));
    restore.LD_PRELOAD = saved === '' ? undefined : saved;
    restore[SAVED_PRELOAD_VAR] = undefined;
  }
  return { addonPath: addonPath === '' ? undefined : addonPath, libraryFds, restore };
}

let taken: Handoff | undefined;

/** Takes the handoff once: restores the caller's environment and closes the libraries' descriptors. */
export function takeHandoff(): Handoff {
  if (taken !== undefined) return taken;
  taken = readHandoff(process.env);
  for (const [name, value] of Object.entries(taken.restore)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  for (const fd of taken.libraryFds) {
    try {
      closeSync(fd);
    } catch {
      // already closed: nothing held
    }
  }
  return taken;
}
