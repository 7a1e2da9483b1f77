// The run loop, read top-down as tini's main: spawn the worker, wait for its exit, take in its death, end
// the processes it left, and start it again when the restart policy says so. Everything else that happens
// at a start or a death is done by the observers the composition root lists.
import { readOomKills } from '../cgroup/oom.js';
import { formatDuration } from '../config/duration.js';
import { sleep, type Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import type { Child } from '../process/child.js';
import { describeExit, type ChildExit } from '../process/exit-status.js';
import { workerDeath, type WorkerDeath } from '../recovery/death.js';
import { decideRestart, type RestartSettings } from '../restart/policy.js';

/** A part that follows the worker's life; every method is optional. */
export interface RunObserver {
  /** The worker was started (or could not be: pid undefined). */
  started?(pid: number | undefined): void;
  /** The worker has exited; the run loop waits for what this returns before it goes on. */
  died?(death: WorkerDeath, exit: ChildExit): Promise<void> | void;
  /** The worker will be started again after the delay, for the `restart`th time. */
  restarting?(restart: number, exit: ChildExit): void;
}

/** A worker just started, with what its death will be weighed against. */
export interface StartedWorker {
  readonly child: Child;
  /** The cgroup's OOM kill counter as it started. */
  readonly oomKillsBefore: number | undefined;
  readonly startedAt: number;
}

/**
 * Starts a worker with `spawn`. The OOM kill counter is read just after the spawn, not before, so the worker
 * never waits for it: a kill in that instant, before the worker's command has even run, would count as a
 * plain SIGKILL.
 */
export function startWorker(spawn: () => Child, clock: Clock): StartedWorker {
  const startedAt = clock.now();
  const child = spawn();
  return { child, oomKillsBefore: readOomKills(), startedAt };
}

export interface RunParts {
  /** The first worker, when it was started before the run loop (src/supervisor/early.ts). */
  readonly first: StartedWorker | undefined;
  readonly spawn: () => Child;
  readonly observers: readonly RunObserver[];
  /** The processes the worker left, once it has exited. */
  readonly endLeftovers: (child: Child) => Promise<void>;
  readonly restart: RestartSettings;
  /** A stop was asked for (SIGTERM, SIGINT): the worker's exit is the end. */
  readonly stopRequested: () => boolean;
  /** The restart signal stopped the worker: it is started again at once, whatever the restart policy. */
  readonly restartRequested: () => boolean;
  /** Resolves when a stop is asked for, cutting a restart's delay short. */
  readonly stopped: Promise<void>;
  /** drain-init's own SIGKILL went to the worker at the deadline. */
  readonly killedAtDeadline: () => boolean;
  readonly clock: Clock;
  readonly log: Logger;
}

/** Runs the worker until it exits for good; resolves to how it exited the last time. */
export async function runWorker(parts: RunParts): Promise<ChildExit> {
  const { observers, clock } = parts;
  let restarts = 0;
  let restartsInRow = 0;
  let started = parts.first;
  for (;;) {
    const { child, oomKillsBefore, startedAt } = started ?? startWorker(parts.spawn, clock);
    started = undefined;
    for (const observer of observers) observer.started?.(child.pid);

    const exit = await child.exited;

    const death = workerDeath(exit, {
      oomKillsBefore,
      oomKillsAfter: readOomKills(),
      killedAtDeadline: parts.killedAtDeadline(),
    });
    for (const observer of observers) await observer.died?.(death, exit);

    await parts.endLeftovers(child);

    if (parts.restartRequested() && !parts.stopRequested()) {
      parts.log.info({ exit: describeExit(exit), restarts: restarts + 1 }, 'restarting the worker (--restart-signal)');
      for (const observer of observers) observer.restarting?.(restarts + 1, exit);
      restarts++;
      restartsInRow = 0;
      continue;
    }
    const decision = decideRestart(parts.restart, {
      exit,
      stopRequested: parts.stopRequested(),
      ranMs: clock.now() - startedAt,
      restartsInRow,
    });
    if (!decision.restart) return exit;
    parts.log.warn(
      { exit: describeExit(exit), cause: death.description, delayMs: decision.delayMs, restarts: restarts + 1 },
      `restarting the worker in ${formatDuration(decision.delayMs)} (--restart ${parts.restart.policy})`,
    );
    for (const observer of observers) observer.restarting?.(restarts + 1, exit);
    await Promise.race([parts.stopped, sleep(clock, decision.delayMs, true)]);
    if (parts.stopRequested()) return exit;
    restarts++;
    restartsInRow = decision.restartsInRow;
  }
}
