// The one reader of /proc: a process's stat line, every process, and the tree below a process. The parsing
// and the walk are pure; /proc entries vanish as processes exit, and such a race reads as nothing.
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/** A process as `/proc/<pid>/stat` describes it. */
export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly pgrp: number;
  /** R, S, D, T (stopped), t (traced), Z (zombie) ... */
  readonly state: string;
  /** The kernel's command name (at most 15 characters). */
  readonly command: string;
}

/** Parses a `/proc/<pid>/stat` line; undefined when it is not one. */
export function parseStat(stat: string): ProcessInfo | undefined {
  // The command name may itself hold spaces and parentheses: it ends at the last ')'.
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  if (open === -1 || close < open) return undefined;
  const [state, ppid, pgrp] = stat
    .slice(close + 1)
    .trim()
    .split(' ');
  const numbers = { pid: Number(stat.slice(0, open)), ppid: Number(ppid), pgrp: Number(pgrp) };
  if (!state || !Object.values(numbers).every(Number.isInteger)) return undefined;
  return { ...numbers, state, command: stat.slice(open + 1, close) };
}

/** The pids of a `children` file: space-separated, with a trailing space. */
export function parseChildren(text: string): number[] {
  return text
    .split(' ')
    .filter((word) => /^\d+$/.test(word))
    .map(Number);
}

export type ChildrenOf = (pid: number) => readonly number[];

/** `root` and every process below it. */
export function descendants(root: number, childrenOf: ChildrenOf): Set<number> {
  const found = new Set<number>([root]);
  const pending = [root];
  for (let pid = pending.pop(); pid !== undefined; pid = pending.pop()) {
    for (const child of childrenOf(pid)) {
      if (found.has(child)) continue;
      found.add(child);
      pending.push(child);
    }
  }
  return found;
}

/** Each parent's children, from each process's parent. */
export function childrenByParent(processes: Iterable<Pick<ProcessInfo, 'pid' | 'ppid'>>): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const { pid, ppid } of processes) {
    const siblings = children.get(ppid);
    if (siblings === undefined) children.set(ppid, [pid]);
    else siblings.push(pid);
  }
  return children;
}

export function readProcess(pid: number | string, procDir = '/proc'): ProcessInfo | undefined {
  return parseStat(tryRead(() => readFileSync(join(procDir, String(pid), 'stat'), 'utf8'), ''));
}

/** The process's state, or undefined when it is gone. */
export function processState(pid: number): string | undefined {
  return readProcess(pid)?.state;
}

/** The process exists and is not a zombie. */
export function isRunning(pid: number): boolean {
  const state = processState(pid);
  return state !== undefined && state !== 'Z';
}

/** Every process of a /proc, whoever owns it. */
export function readProcesses(procDir = '/proc'): ProcessInfo[] {
  return tryRead(() => readdirSync(procDir), [])
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => readProcess(name, procDir) ?? []);
}

/**
 * Every process /proc shows, or undefined when /proc is missing or belongs to another PID namespace
 * than drain-init's (`unshare --pid` without a /proc of its own): its pids would name other processes
 * than kill's.
 */
export function listProcesses(): ProcessInfo[] | undefined {
  if (tryRead(() => readlinkSync('/proc/self'), '') !== String(process.pid)) return undefined;
  return readProcesses();
}

/**
 * `root` and its descendants as they are now; empty when root has exited. Reads
 * /proc/<pid>/task/<tid>/children, or the parent of every process when the kernel has no children files
 * (CONFIG_PROC_CHILDREN unset).
 */
export function processTree(root: number, procDir = '/proc'): Set<number> {
  if (!existsSync(join(procDir, String(root)))) return new Set();
  if (existsSync(join(procDir, String(root), 'task', String(root), 'children'))) {
    return descendants(root, (pid) => readChildren(procDir, pid));
  }
  const children = childrenByParent(readProcesses(procDir));
  return descendants(root, (pid) => children.get(pid) ?? []);
}

function readChildren(procDir: string, pid: number): number[] {
  const taskDir = join(procDir, String(pid), 'task');
  return tryRead(() => readdirSync(taskDir), []).flatMap((tid) =>
    parseChildren(tryRead(() => readFileSync(join(taskDir, tid, 'children'), 'utf8'), '')),
  );
}

function tryRead<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}
