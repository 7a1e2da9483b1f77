import { createRequire } from 'node:module';

/** The system calls Node does not offer, from drain_init.c. */
export interface NativeAddon {
  /** Reaps every exited child except the given pids (the ones Node waits for itself); returns how many. */
  reapOrphans(protectedPids: readonly number[]): number;
  setChildSubreaper(): void;
  isChildSubreaper(): boolean;
}

const ADDON_PATH = new URL('../../src/native/build/Release/drain_init.node', import.meta.url);

export function loadAddon(): NativeAddon {
  const require = createRequire(import.meta.url);
  return require(ADDON_PATH.pathname) as NativeAddon;
}
