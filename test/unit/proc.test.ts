import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { childrenByParent, descendants, parseChildren, parseStat, processTree } from '../../src/process/proc.js';

const sorted = (pids: Iterable<number>): number[] => [...pids].sort((a, b) => a - b);
const lookup = (children: ReadonlyMap<number, readonly number[]>) => (pid: number) => children.get(pid) ?? [];

describe('parseStat', () => {
  it('reads pid, command, state, parent and process group', () => {
    expect(parseStat('1234 (sleep) S 1 1200 1200 0 -1 4194304 95 0 0 0 0 0 0 0 20 0 1 0 6047 2461696 208')).toEqual({
      pid: 1234,
      command: 'sleep',
      state: 'S',
      ppid: 1,
      pgrp: 1200,
    });
  });

  it('takes a command name holding spaces and parentheses whole', () => {
    expect(parseStat('77 (a) b (c) T 9 77 77 0')).toMatchObject({
      pid: 77,
      command: 'a) b (c',
      state: 'T',
      ppid: 9,
      pgrp: 77,
    });
  });

  it('reads the ppid after the command name, whatever it holds', () => {
    expect(parseStat('16214 (cat) R 16206 16206 13203 0 -1 4194304')?.ppid).toBe(16206);
    expect(parseStat('42 (ruby (sidekiq) 7.3 [0 of 5 busy]) S 7 42 1 0')?.ppid).toBe(7);
  });

  it('rejects what is not a stat line', () => {
    expect(parseStat('')).toBeUndefined();
    expect(parseStat('12 no parentheses S 1 1')).toBeUndefined();
    expect(parseStat('12 (x)')).toBeUndefined();
  });
});

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
    const processes = [
      { pid: 6, ppid: 1 },
      { pid: 7, ppid: 6 },
      { pid: 12, ppid: 7 },
      { pid: 13, ppid: 7 },
      { pid: 99, ppid: 0 },
    ];
    expect(childrenByParent(processes)).toEqual(
      new Map([
        [1, [6]],
        [6, [7]],
        [7, [12, 13]],
        [0, [99]],
      ]),
    );
    expect(sorted(descendants(6, lookup(childrenByParent(processes))))).toEqual([6, 7, 12, 13]);
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
