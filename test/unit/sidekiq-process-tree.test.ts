import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  childrenFromParents,
  descendants,
  parentFromStat,
  parseChildren,
  processTree,
} from '../../src/sidekiq/process-tree.js';

const sorted = (pids: Iterable<number>): number[] => [...pids].sort((a, b) => a - b);
const lookup = (children: ReadonlyMap<number, readonly number[]>) => (pid: number) => children.get(pid) ?? [];

describe('the tree below a root (pure)', () => {
  it('walks every level, root included, and nothing beside it', () => {
    const children = new Map([
      [1, [6, 30]],
      [6, [7]],
      [7, [12, 13]],
      [30, []],
      [99, [100]],
    ]);
    expect(sorted(descendants(6, lookup(children)))).toEqual([6, 7, 12, 13]);
    expect(sorted(descendants(1, lookup(children)))).toEqual([1, 6, 7, 12, 13, 30]);
    expect([...descendants(42, lookup(children))]).toEqual([42]);
  });

  it('ends on a cycle', () => {
    expect(
      sorted(
        descendants(
          1,
          lookup(
            new Map([
              [1, [2]],
              [2, [1, 3]],
            ]),
          ),
        ),
      ),
    ).toEqual([1, 2, 3]);
  });

  it("builds each parent's children from each process's parent", () => {
    const parents = new Map([
      [6, 1],
      [7, 6],
      [12, 7],
      [13, 7],
      [99, 0],
    ]);
    expect(childrenFromParents(parents)).toEqual(
      new Map([
        [1, [6]],
        [6, [7]],
        [7, [12, 13]],
        [0, [99]],
      ]),
    );
    expect(sorted(descendants(6, lookup(childrenFromParents(parents))))).toEqual([6, 7, 12, 13]);
  });

  it('reads the ppid after the command name, whatever it holds', () => {
    expect(parentFromStat('16214 (cat) R 16206 16206 13203 0 -1 4194304')).toBe(16206);
    expect(parentFromStat('42 (ruby (sidekiq) 7.3 [0 of 5 busy]) S 7 42 1 0')).toBe(7);
    expect(parentFromStat('')).toBeUndefined();
  });

  it('reads a children file', () => {
    expect(parseChildren('123 456 ')).toEqual([123, 456]);
    expect(parseChildren('')).toEqual([]);
  });
});

describe('the tree read from a /proc', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** A fake /proc: pid -> [ppid, children of each thread] (children files only when `withChildren`). */
  function fakeProc(processes: Record<number, [number, number[][]]>, withChildren: boolean): string {
    const proc = mkdtempSync(join(tmpdir(), 'drain-init-proc-'));
    dirs.push(proc);
    for (const [pid, [ppid, threads]] of Object.entries(processes)) {
      mkdirSync(join(proc, pid, 'task'), { recursive: true });
      writeFileSync(join(proc, pid, 'stat'), `${pid} (ruby (x)) S ${ppid} 1 1 0 -1`);
      threads.forEach((children, index) => {
        const tid = index === 0 ? pid : `${pid}${index}`;
        mkdirSync(join(proc, pid, 'task', tid));
        if (withChildren)
          writeFileSync(join(proc, pid, 'task', tid, 'children'), children.map((child) => `${child} `).join(''));
      });
    }
    mkdirSync(join(proc, 'self')); // not a pid: skipped
    return proc;
  }

  const processes: Record<number, [number, number[][]]> = {
    1: [0, [[6, 50]]],
    6: [1, [[7]]],
    // Sidekiq is threaded: a child forked by another thread is listed in that thread's file.
    7: [6, [[], [12]]],
    12: [7, [[]]],
    50: [1, [[]]],
  };

  it('from the children files, across threads', () => {
    expect(sorted(processTree(6, fakeProc(processes, true)))).toEqual([6, 7, 12]);
  });

  it('from every ppid when the kernel has no children files', () => {
    expect(sorted(processTree(6, fakeProc(processes, false)))).toEqual([6, 7, 12]);
  });

  it('empty once the root has exited', () => {
    expect(processTree(999, fakeProc(processes, true))).toEqual(new Set());
  });

  it('from the real /proc: a shell and its two children', async () => {
    const shell = spawn('sh', ['-c', 'sleep 30 & sleep 30 & wait'], { stdio: 'ignore' });
    const root = shell.pid ?? -1;
    try {
      let tree = processTree(root);
      for (let attempt = 0; attempt < 100 && tree.size < 3; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        tree = processTree(root);
      }
      expect(tree.size).toBe(3);
      expect(tree.has(root)).toBe(true);
      expect(tree.has(process.pid)).toBe(false);
      for (const pid of tree) if (pid !== root) process.kill(pid, 'SIGKILL');
    } finally {
      shell.kill('SIGKILL');
    }
  });
});
