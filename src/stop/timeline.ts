import { formatDuration } from '../config/duration.js';
import { signalName } from '../process/signals.js';
import type { StopSettings } from './settings.js';

/** When each step happens, in ms after the platform's SIGTERM (T0). */
export interface StopPlan {
  /** Undefined when there is no quiet phase. */
  readonly quietSignal: number | undefined;
  readonly stopSignal: number;
  readonly stopAtMs: number;
  readonly killAtMs: number;
  /** The platform's own SIGKILL: T0 + grace period. */
  readonly deadlineMs: number;
  /** Why the plan could not be what the settings asked for; each is logged as a warning. */
  readonly warnings: readonly string[];
}

/**
 * TERM goes out late enough that the worker's own shutdown timeout and the stop margin end before
 * the kill, and never before T0; KILL goes out `killMargin` before the platform's deadline. A worker
 * with no quiet signal has nothing to wait for, so it gets its stop signal at T0. `received` is the
 * signal that started the stop, which is the stop signal unless the settings name one.
 */
export function planStop(settings: StopSettings, received: number): StopPlan {
  const stopSignal = settings.stopSignal === 'received' ? received : settings.stopSignal;
  const deadlineMs = settings.gracePeriodMs;
  const warnings: string[] = [];
  const killAtMs = Math.max(0, deadlineMs - settings.killMarginMs);
  if (settings.killMarginMs > deadlineMs) {
    warnings.push(
      `kill margin ${formatDuration(settings.killMarginMs)} is longer than the grace period ${formatDuration(deadlineMs)}: KILL at once`,
    );
  }
  const wanted =
    settings.quietSignal === undefined ? 0 : deadlineMs - settings.shutdownTimeoutMs - settings.stopMarginMs;
  if (settings.quietSignal !== undefined && wanted < 0) {
    warnings.push(
      `shutdown timeout ${formatDuration(settings.shutdownTimeoutMs)} + stop margin ${formatDuration(settings.stopMarginMs)} ` +
        `do not fit in the grace period ${formatDuration(deadlineMs)}: ${signalName(stopSignal)} at once`,
    );
  }
  const stopAtMs = Math.min(Math.max(0, wanted), killAtMs);
  return {
    quietSignal: stopAtMs > 0 ? settings.quietSignal : undefined,
    stopSignal,
    stopAtMs,
    killAtMs,
    deadlineMs,
    warnings,
  };
}

function shortName(signal: number): string {
  return signalName(signal).slice(3);
}

function offset(ms: number): string {
  return ms === 0 ? 'now' : `at +${(ms / 1000).toFixed(1)} s`;
}

/** `TSTP now, TERM at +30.0 s, KILL at +58.0 s, deadline at +60.0 s` */
export function describePlan(plan: StopPlan): string {
  const steps = [
    ...(plan.quietSignal === undefined ? [] : [`${shortName(plan.quietSignal)} now`]),
    `${shortName(plan.stopSignal)} ${offset(plan.stopAtMs)}`,
    `KILL ${offset(plan.killAtMs)}`,
    `deadline ${offset(plan.deadlineMs)}`,
  ];
  return steps.join(', ');
}
