import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

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

function readProcess(pid: number | string): ProcessInfo | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The process's state, or undefined when it is gone. */
export function processState(pid: number): string | undefined {
  return readProcess(pid)?.state;
}

/**
 * Every process /proc shows, or undefined when /proc is missing or belongs to another PID namespace
 * than drain-init's (`unshare --pid` without a /proc of its own): its pids would name other processes
 * than kill's.
 */
export function listProcesses(): ProcessInfo[] | undefined {
  try {
    if (readlinkSync('/proc/self') !== String(process.pid)) return undefined;
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .flatMap((name) => readProcess(name) ?? []);
  } catch {
    return undefined;
  }
}
