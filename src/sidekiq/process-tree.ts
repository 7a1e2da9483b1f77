// The pids of the supervised process tree, read from /proc. The walk itself is pure; reading uses
// /proc/<pid>/task/<tid>/children, or the ppid of every process when the kernel has no children files
// (CONFIG_PROC_CHILDREN unset).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

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
export function childrenFromParents(parents: ReadonlyMap<number, number>): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const [pid, parent] of parents) {
    const siblings = children.get(parent);
    if (siblings === undefined) children.set(parent, [pid]);
    else siblings.push(pid);
  }
  return children;
}

/** The ppid of a `/proc/<pid>/stat` line; the command name may hold spaces and parentheses, so it follows the last ')'. */
export function parentFromStat(stat: string): number | undefined {
  const ppid = Number(
    stat
      .slice(stat.lastIndexOf(')') + 1)
      .trim()
      .split(' ')[1],
  );
  return Number.isSafeInteger(ppid) ? ppid : undefined;
}

/** The pids of a `children` file: space-separated, with a trailing space. */
export function parseChildren(text: string): number[] {
  return text
    .split(' ')
    .filter((word) => /^\d+$/.test(word))
    .map(Number);
}

/** `root` and its descendants as they are now; empty when root has exited. */
export function processTree(root: number, procDir = '/proc'): Set<number> {
  if (!existsSync(join(procDir, String(root)))) return new Set();
  if (existsSync(join(procDir, String(root), 'task', String(root), 'children')))
    return descendants(root, (pid) => readChildren(procDir, pid));
  const children = childrenFromParents(readParents(procDir));
  return descendants(root, (pid) => children.get(pid) ?? []);
}

/** Children are listed per thread: the union over the process's threads. A process that exits meanwhile has none. */
function readChildren(procDir: string, pid: number): number[] {
  const taskDir = join(procDir, String(pid), 'task');
  return tryRead(() => readdirSync(taskDir), []).flatMap((tid) =>
    parseChildren(tryRead(() => readFileSync(join(taskDir, tid, 'children'), 'utf8'), '')),
  );
}

function readParents(procDir: string): Map<number, number> {
  const parents = new Map<number, number>();
  for (const name of tryRead(() => readdirSync(procDir), [])) {
    if (!/^\d+$/.test(name)) continue;
    const parent = parentFromStat(tryRead(() => readFileSync(join(procDir, name, 'stat'), 'utf8'), ''));
    if (parent !== undefined) parents.set(Number(name), parent);
  }
  return parents;
}

/** /proc entries vanish as processes exit; such a race reads as nothing. */
function tryRead<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}
