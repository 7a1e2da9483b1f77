// Why the worker died, in words for the log, and whether its jobs must be recovered from the record.
import type { ChildExit } from '../process/exit-status.js';

export const DEATH_CAUSES = [
  'clean',
  'oom-killed',
  'killed-at-deadline',
  'signal',
  'exit-code',
  'not-started',
] as const;
export type DeathCause = (typeof DEATH_CAUSES)[number];

export interface WorkerDeath {
  readonly cause: DeathCause;
  /** "worker OOM-killed", "worker killed by signal SIGSEGV", ... */
  readonly description: string;
  /** Sidekiq did not requeue its jobs itself: they must come back from the job record. */
  readonly recoverJobs: boolean;
}

export interface DeathContext {
  /** The cgroup's OOM-kill counter before the worker started and after it died; undefined where there is none. */
  readonly oomKillsBefore: number | undefined;
  readonly oomKillsAfter: number | undefined;
  /** drain-init sent its own SIGKILL at the deadline. */
  readonly killedAtDeadline: boolean;
}

/** A clean exit (0) means Sidekiq's TERM shutdown requeued every job it had; any other end did not. */
export function workerDeath(exit: ChildExit, context: DeathContext): WorkerDeath {
  switch (exit.kind) {
    case 'spawn-failed':
      return { cause: 'not-started', description: 'worker not started', recoverJobs: false };
    case 'exited':
      return exit.code === 0
        ? { cause: 'clean', description: 'worker exited cleanly', recoverJobs: false }
        : { cause: 'exit-code', description: `worker exited with code ${exit.code}`, recoverJobs: true };
    case 'signaled': {
      if (exit.signal === 'SIGKILL' && oomKillsRose(context))
        return { cause: 'oom-killed', description: 'worker OOM-killed', recoverJobs: true };
      if (exit.signal === 'SIGKILL' && context.killedAtDeadline) {
        return {
          cause: 'killed-at-deadline',
          description: "worker killed by drain-init's SIGKILL at the deadline",
          recoverJobs: true,
        };
      }
      return { cause: 'signal', description: `worker killed by signal ${exit.signal}`, recoverJobs: true };
    }
  }
}

function oomKillsRose({ oomKillsBefore, oomKillsAfter }: DeathContext): boolean {
  return oomKillsBefore !== undefined && oomKillsAfter !== undefined && oomKillsAfter > oomKillsBefore;
}
