// Whether drain-init starts the worker again after it exits, and after how long: for platforms that
// do not restart the container themselves. Exponential backoff, capped.
import type { ChildExit } from '../process/exit-status.js';

export const RESTART_POLICIES = ['never', 'on-failure', 'always'] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

export interface RestartSettings {
  readonly policy: RestartPolicy;
  /** The delay before the first restart, doubled for each restart in a row. */
  readonly firstDelayMs: number;
  readonly maxDelayMs: number;
}

export interface RunEnd {
  readonly exit: ChildExit;
  /** drain-init was asked to stop (SIGTERM, SIGINT): the worker's exit is the end. */
  readonly stopRequested: boolean;
  /** How long the worker ran. */
  readonly ranMs: number;
  /** Restarts in a row before this run. */
  readonly restartsInRow: number;
}

export type RestartDecision =
  { readonly restart: false } | { readonly restart: true; readonly delayMs: number; readonly restartsInRow: number };

/** A run that outlasts the cap ends the row: its successor restarts after the first delay again. */
export function decideRestart(settings: RestartSettings, end: RunEnd): RestartDecision {
  if (end.stopRequested || end.exit.kind === 'spawn-failed' || !policyRestarts(settings.policy, end.exit))
    return { restart: false };
  const inRow = end.ranMs > settings.maxDelayMs ? 0 : end.restartsInRow;
  return {
    restart: true,
    delayMs: Math.min(settings.firstDelayMs * 2 ** inRow, settings.maxDelayMs),
    restartsInRow: inRow + 1,
  };
}

function policyRestarts(policy: RestartPolicy, exit: ChildExit): boolean {
  switch (policy) {
    case 'never':
      return false;
    case 'on-failure':
      return !(exit.kind === 'exited' && exit.code === 0);
    case 'always':
      return true;
  }
}
