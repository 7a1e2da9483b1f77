/**
 * What the benchmarks read of a running process from /proc, and the statistics they print. Only erasable
 * TypeScript syntax: the benchmarks run with Node 24's type stripping.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** A field of /proc/<pid>/status in kB (VmRSS, RssAnon ...); NaN when the process or the field is gone. */
export function statusKb(pid: number, field: string): number {
  try {
    return kbOf(readFileSync(`/proc/${pid}/status`, 'utf8'), field);
  } catch {
    return Number.NaN;
  }
}

/** A field of a /proc/<pid>/status text in kB. */
export function kbOf(status: string, field: string): number {
  return Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
}

/** CPU time every live thread of the process has used, in ms (/proc/<pid>/task/<tid>/schedstat, in ns). */
export function cpuMs(pid: number): number {
  return sumOverThreads(pid, 'schedstat', (text) => Number(text.split(' ')[0])) / 1e6;
}

/** How many times the threads of a process have gone to sleep (voluntary context switches, every live thread). */
export function sleepCount(pid: number): number {
  return sumOverThreads(pid, 'status', (text) => Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(text)?.[1] ?? 0));
}

/** A figure of each live thread's /proc/<pid>/task/<tid>/<file>, summed. */
function sumOverThreads(pid: number, file: string, figure: (text: string) => number): number {
  let sum = 0;
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    try {
      sum += figure(readFileSync(`/proc/${pid}/task/${task}/${file}`, 'utf8'));
    } catch {
      // the thread ended meanwhile
    }
  }
  return sum;
}

/** Children of a process (for unshare: the namespace's init, as seen from here); none once it is gone. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** CPU time of a process and of every process below it, in ms (a proxy such as socat forks one per connection). */
export function treeCpuMs(pid: number): number {
  return childrenOf(pid).reduce((sum, child) => sum + treeCpuMs(child), cpuMs(pid));
}

/**
 * CPU time of a process and of its children that have ended and been waited for (utime, stime, cutime and
 * cstime of /proc/<pid>/stat), in ms, to 10 ms: a proxy that forks a process per connection, read after the
 * connections closed.
 */
export function reapedTreeCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return [11, 12, 13, 14].reduce((sum, index) => sum + Number(fields[index]), 0) * 10;
}

/** A /proc/<pid>/status field in kB summed over a process and every process below it (NaN once any is gone). */
export function treeKb(pid: number, field: string): number {
  return childrenOf(pid).reduce((sum, child) => sum + treeKb(child, field), statusKb(pid, field));
}

/** The first process at or below `pid` whose command line starts with `name` (its $0, as Sidekiq sets it). */
export function processNamed(pid: number, name: string): number | undefined {
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return undefined;
  }
  if (cmdline.startsWith(name)) return pid;
  for (const child of childrenOf(pid)) {
    const found = processNamed(child, name);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** Calls `sample` every `everyMs` until the returned stop() is called. */
export function sampleEvery(everyMs: number, sample: () => void): () => void {
  const timer = setInterval(sample, everyMs);
  return () => clearInterval(timer);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** The nearest-rank percentile. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}
