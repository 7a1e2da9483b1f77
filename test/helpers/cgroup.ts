// A memory-limited cgroup below the test's own, for the OOM tests: cgroup v1's memory controller
// (memory.limit_in_bytes), else cgroup v2's (memory.max). A process moves itself in by writing 0 to
// `procs`, so everything it then starts is inside from its first instruction.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { oomCounterFiles, parseOomKills } from '../../src/cgroup/oom.js';

export interface MemoryCgroup {
  readonly version: 1 | 2;
  readonly path: string;
  /** cgroup.procs of the new cgroup. */
  readonly procs: string;
  /** Processes the kernel's OOM killer has killed in it. */
  oomKills(): number;
  /** Removes it once its processes are gone (it must be empty). */
  remove(): Promise<void>;
}

/** Throws, saying why, when this kernel or this process cannot make one. */
export function memoryCgroup(name: string, limitBytes: number): MemoryCgroup {
  const own = oomCounterFiles(
    readFileSync('/proc/self/cgroup', 'utf8'),
    readFileSync('/proc/self/mountinfo', 'utf8'),
  ).find((file) => existsSync(file));
  if (own === undefined)
    throw new Error(
      'no memory cgroup: neither a cgroup v1 memory controller nor cgroup v2 with memory.events is mounted for this process',
    );
  const version = basename(own) === 'memory.oom_control' ? 1 : 2;
  const parent = dirname(own);
  if (version === 2) enableMemoryController(parent);
  const path = join(parent, name);
  mkdirSync(path);
  const limit = (file: string, value: string): void => {
    if (existsSync(join(path, file))) writeFileSync(join(path, file), value);
  };
  if (version === 1) {
    limit('memory.limit_in_bytes', String(limitBytes));
    // With swap the limit would only push the worker's memory out to it; memsw counts both.
    limit('memory.memsw.limit_in_bytes', String(limitBytes));
  } else {
    limit('memory.max', String(limitBytes));
    limit('memory.swap.max', '0');
  }
  return {
    version,
    path,
    procs: join(path, 'cgroup.procs'),
    oomKills: () => parseOomKills(readFileSync(join(path, basename(own)), 'utf8')) ?? 0,
    remove: async () => {
      for (let attempt = 0; existsSync(path); attempt++) {
        try {
          rmdirSync(path);
        } catch (error) {
          if (attempt >= 50) throw error;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    },
  };
}

/** cgroup v2 gives a child the memory controller only through its parent's cgroup.subtree_control. */
function enableMemoryController(parent: string): void {
  if (readFileSync(join(parent, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes('memory')) return;
  try {
    writeFileSync(join(parent, 'cgroup.subtree_control'), '+memory');
  } catch (error) {
    throw new Error(
      `cgroup v2: cannot enable the memory controller below ${parent} (${(error as Error).message}); a cgroup that holds processes cannot hand it to children`,
    );
  }
}
