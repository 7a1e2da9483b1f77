import { createRequire } from 'node:module';

/** The system calls Node does not offer, from drain_init.c. */
export interface NativeAddon {
  /** Reaps every exited child except the given pids (the ones Node waits for itself); returns how many. */
  reapOrphans(protectedPids: readonly number[]): number;
  setChildSubreaper(): void;
  isChildSubreaper(): boolean;
  /** Lets the kernel reclaim the pages of read-only file mappings (the node executable); returns the bytes advised. */
  trimResidentSet(): number;
}

/** Copied beside the bundle (dist/drain-init.mjs) by the build. */
const ADDON_PATH = new URL('./drain_init.node', import.meta.url);

export function loadAddon(): NativeAddon {
  const require = createRequire(import.meta.url);
  return require(ADDON_PATH.pathname) as NativeAddon;
}
