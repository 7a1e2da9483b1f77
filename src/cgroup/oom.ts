// How many processes the kernel's OOM killer has killed in drain-init's memory cgroup: the `oom_kill`
// counter of memory.events (cgroup v2) or memory.oom_control (v1, kernel 4.13+). Read before the worker
// starts and after it dies, it tells an OOM kill from any other SIGKILL.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CgroupMount {
  readonly version: 1 | 2;
  /** The cgroup path the mount shows at its mount point. */
  readonly root: string;
  readonly mountPoint: string;
}

const COUNTER_FILE = { 1: 'memory.oom_control', 2: 'memory.events' } as const;

export function parseOomKills(text: string): number | undefined {
  const match = /^oom_kill (\d+)$/m.exec(text);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** The cgroup v1 memory mounts and cgroup v2 mounts of /proc/self/mountinfo. */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const [before, after] = line.split(' - ');
    const [, , , root, mountPoint] = before?.split(' ') ?? [];
    const [fsType, , superOptions = ''] = after?.split(' ') ?? [];
    if (root === undefined || mountPoint === undefined) continue;
    const mount = { root: unescapeMountinfo(root), mountPoint: unescapeMountinfo(mountPoint) };
    if (fsType === 'cgroup2') mounts.push({ version: 2, ...mount });
    else if (fsType === 'cgroup' && superOptions.split(',').includes('memory')) mounts.push({ version: 1, ...mount });
  }
  return mounts;
}

/**
 * The counter files to try, best first: this process's memory cgroup under each mount, then the
 * mount point itself (a container without a cgroup namespace sees its own cgroup mounted there while
 * /proc/self/cgroup names the host's path).
 */
export function oomCounterFiles(procSelfCgroup: string, mountinfo: string): string[] {
  const paths = cgroupPaths(procSelfCgroup);
  const files: string[] = [];
  for (const mount of parseCgroupMounts(mountinfo)) {
    const file = COUNTER_FILE[mount.version];
    const relative = relativeTo(paths[mount.version], mount.root);
    if (relative !== undefined) files.push(join(mount.mountPoint, relative, file));
    files.push(join(mount.mountPoint, file));
  }
  return [...new Set(files)];
}

/** The counter, or undefined where no memory cgroup counts OOM kills (no cgroup v1 memory controller, v2 without memory, an old kernel). */
export function readOomKills(
  read: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): number | undefined {
  let files: string[];
  try {
    files = oomCounterFiles(read('/proc/self/cgroup'), read('/proc/self/mountinfo'));
  } catch {
    return undefined;
  }
  for (const file of files) {
    try {
      const count = parseOomKills(read(file));
      if (count !== undefined) return count;
    } catch {
      // not this one: the next candidate
    }
  }
  return undefined;
}

/** The v1 memory controller's path and the v2 path from /proc/self/cgroup (`id:controllers:path` lines). */
function cgroupPaths(procSelfCgroup: string): { 1?: string; 2?: string } {
  const paths: { 1?: string; 2?: string } = {};
  for (const line of procSelfCgroup.split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (match === null) continue;
    const [, id, controllers = '', path = ''] = match;
    if (id === '0' && controllers === '') paths[2] = path;
    else if (controllers.split(',').includes('memory')) paths[1] = path;
  }
  return paths;
}

function relativeTo(path: string | undefined, root: string): string | undefined {
  if (path === undefined) return undefined;
  if (root === '/') return path;
  if (path === root || path.startsWith(`${root}/`)) return path.slice(root.length);
  return undefined;
}

/** mountinfo writes space, tab, newline and backslash as octal escapes. */
function unescapeMountinfo(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}
