import { createRequire } from 'node:module';

/** The system calls Node does not offer, from drain_init.c. */
export interface NativeAddon {
  /** Reaps every exited child except the given pids (the ones Node waits for itself); returns how many. */
  reapOrphans(protectedPids: readonly number[]): number;
  setChildSubreaper(): void;
  isChildSubreaper(): boolean;
}

/** Copied beside the bundle (dist/drain-init.mjs) by the build. */
const ADDON_PATH = new URL('./drain_init.node', import.meta.url);

export function loadAddon(): NativeAddon {
  const require = createRequire(import.meta.url);
  return require(ADDON_PATH.pathname) as NativeAddon;
}
