import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { childrenByParent, descendants, listProcesses, type ProcessInfo } from './proc.js';
import { parseSignal } from './signals.js';

/** Which processes count as left over once the main child has exited. */
export interface LeftoverScope {
  /** drain-init's own pid. */
  readonly self: number;
  /** The main child's process group (its pid), when it was started. */
  readonly childGroup: number | undefined;
  /** drain-init is PID 1: every other process of the namespace is left over. */
  readonly wholeNamespace: boolean;
}

/**
 * The processes still running: every other one in the namespace as PID 1, else drain-init's
 * descendants (orphans re-parented to a subreaper) and the members of the child's process group.
 */
export function selectLeftovers(processes: readonly ProcessInfo[], scope: LeftoverScope): ProcessInfo[] {
  const children = childrenByParent(processes);
  const below = descendants(scope.self, (pid) => children.get(pid) ?? []);
  return processes.filter(
    (info) =>
      info.pid !== scope.self &&
      info.state !== 'Z' &&
      (scope.wholeNamespace || below.has(info.pid) || info.pgrp === scope.childGroup),
  );
}

export interface LeftoverActions {
  /** The leftovers now. */
  list(): readonly ProcessInfo[];
  signal(pid: number, signal: number): void;
}

export interface LeftoverTimes {
  /** How long they have between TERM and KILL. */
  readonly graceMs: number;
  /** When a stop under way kills, on the timers' clock: the grace ends by then. */
  readonly killAt: number | undefined;
}

/** How often the leftovers are listed again while they have time to exit. */
const POLL_MS = 50;
const SIGTERM = parseSignal('TERM');
const SIGCONT = parseSignal('CONT');
const SIGKILL = parseSignal('KILL');

const described = ({ pid, command }: ProcessInfo) => ({ pid, command });

/**
 * Sends TERM (and CONT to a suspended one, so that it acts on it) to every leftover, and to any that appears
 * meanwhile; KILL to those still running when the grace period is over. Resolves when none is left
 * or the KILLs are sent.
 */
export function endLeftovers(actions: LeftoverActions, clock: Clock, log: Logger, times: LeftoverTimes): Promise<void> {
  const start = clock.now();
  const deadline = Math.min(start + times.graceMs, times.killAt ?? Number.POSITIVE_INFINITY);
  const signalled = new Map<number, ProcessInfo>();
  const ended: { pid: number; command: string; afterMs: number }[] = [];
  const terminate = (leftovers: readonly ProcessInfo[]) => {
    for (const info of leftovers) {
      if (signalled.has(info.pid)) continue;
      signalled.set(info.pid, info);
      actions.signal(info.pid, SIGTERM);
      // A suspended one acts on TERM only once resumed; a running one gets no CONT.
      if (info.state === 'T') actions.signal(info.pid, SIGCONT);
    }
  };

  const first = actions.list();
  if (first.length === 0) return Promise.resolve();
  log.warn(
    { leftovers: first.map(described), graceMs: Math.max(0, Math.round(deadline - start)) },
    'processes left after the child exited: sending them SIGTERM',
  );
  terminate(first);
  return new Promise((resolve) => {
    const poll = () => {
      const running = actions.list();
      const stillRunning = new Set(running.map((info) => info.pid));
      for (const [pid, info] of signalled) {
        if (stillRunning.has(pid)) continue;
        signalled.delete(pid);
        ended.push({ ...described(info), afterMs: Math.round(clock.now() - start) });
      }
      if (running.length === 0) {
        log.info({ ended }, 'the leftover processes exited after SIGTERM');
        resolve();
      } else if (clock.now() >= deadline) {
        for (const info of running) actions.signal(info.pid, SIGKILL);
        log.warn(
          { ended, killed: running.map(described) },
          'leftover processes still running after the grace period: sent them SIGKILL',
        );
        resolve();
      } else {
        terminate(running);
        clock.schedule(Math.min(POLL_MS, deadline - clock.now()), poll, true);
      }
    };
    clock.schedule(Math.max(0, Math.min(POLL_MS, deadline - start)), poll, true);
  });
}

/** Ends the processes left in drain-init's scope once the main child has exited (see endLeftovers); a grace of 0 leaves them. */
export async function endLeftoverProcesses(
  scope: LeftoverScope,
  times: LeftoverTimes,
  signal: LeftoverActions['signal'],
  clock: Clock,
  log: Logger,
): Promise<void> {
  if (times.graceMs === 0) return;
  if (listProcesses() === undefined) {
    log.warn(
      'cannot list processes (/proc is missing or belongs to another PID namespace): leftover processes are left as they are',
    );
    return;
  }
  await endLeftovers({ list: () => selectLeftovers(listProcesses() ?? [], scope), signal }, clock, log, times);
}
