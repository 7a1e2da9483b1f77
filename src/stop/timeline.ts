import { formatDuration } from '../config/duration.js';
import { signalName } from '../process/signals.js';
import type { StopSettings } from './settings.js';

/** When each step happens, in ms after the platform's SIGTERM (T0). */
export interface StopPlan {
  /** Undefined when there is no quiet phase. */
  readonly quietSignal: number | undefined;
  /** The first signal, quiet or stop: the stop delay, after which load balancers have let the pod go. */
  readonly firstSignalAtMs: number;
  readonly stopSignal: number;
  readonly stopAtMs: number;
  readonly killAtMs: number;
  /** The platform's own SIGKILL: T0 + grace period. */
  readonly deadlineMs: number;
  /** Why the plan could not be what the settings asked for, each with its fix; each is logged as a warning. */
  readonly warnings: readonly string[];
}

type PlanSettings = Pick<
  StopSettings,
  'gracePeriodMs' | 'shutdownTimeoutMs' | 'stopMarginMs' | 'killMarginMs' | 'quietSignal' | 'stopSignal' | 'stopDelayMs'
>;

/**
 * Nothing is sent during the stop delay. Then TERM goes out late enough that the worker's own shutdown
 * timeout and the stop margin end before the kill, and never before the delay ends; KILL goes out
 * `killMargin` before the platform's deadline. A worker with no quiet signal has nothing to wait for, so
 * it gets its stop signal once the delay is over. `received` is the signal that started the stop, which
 * is the stop signal unless the settings name one.
 */
export function planStop(settings: PlanSettings, received: number): StopPlan {
  const stopSignal = settings.stopSignal === 'received' ? received : settings.stopSignal;
  const deadlineMs = settings.gracePeriodMs;
  const warnings: string[] = [];
  const killAtMs = Math.max(0, deadlineMs - settings.killMarginMs);
  if (settings.killMarginMs > deadlineMs) {
    warnings.push(
      `kill margin ${formatDuration(settings.killMarginMs)} is longer than the grace period ${formatDuration(deadlineMs)}: KILL at once`,
    );
  }
  const firstSignalAtMs = Math.min(settings.stopDelayMs, killAtMs);
  if (settings.stopDelayMs > killAtMs) {
    warnings.push(
      `stop delay ${formatDuration(settings.stopDelayMs)} ends after the kill step at +${formatDuration(killAtMs)}: ` +
        `${signalName(stopSignal)} then KILL at once; give the platform a grace period longer than the stop delay, or shorten --stop-delay`,
    );
  }
  const needed = settings.stopDelayMs + settings.shutdownTimeoutMs + settings.stopMarginMs;
  const wanted =
    settings.quietSignal === undefined ? 0 : deadlineMs - settings.shutdownTimeoutMs - settings.stopMarginMs;
  if (settings.quietSignal !== undefined && wanted < firstSignalAtMs && settings.stopDelayMs <= killAtMs) {
    const delay = settings.stopDelayMs === 0 ? '' : `stop delay ${formatDuration(settings.stopDelayMs)} + `;
    warnings.push(
      `${delay}shutdown timeout ${formatDuration(settings.shutdownTimeoutMs)} + stop margin ${formatDuration(settings.stopMarginMs)} ` +
        `do not fit in the grace period ${formatDuration(deadlineMs)}: ${signalName(stopSignal)} ${settings.stopDelayMs === 0 ? 'at once' : 'when the delay ends'}; ` +
        `give the platform a grace period of at least ${formatDuration(needed)} (terminationGracePeriodSeconds, ECS stopTimeout, ` +
        `compose stop_grace_period, docker stop -t), or a shorter shutdown timeout`,
    );
  }
  const stopAtMs = Math.min(Math.max(firstSignalAtMs, wanted), killAtMs);
  return {
    quietSignal: stopAtMs > firstSignalAtMs ? settings.quietSignal : undefined,
    firstSignalAtMs,
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
    ...(plan.quietSignal === undefined ? [] : [`${shortName(plan.quietSignal)} ${offset(plan.firstSignalAtMs)}`]),
    `${shortName(plan.stopSignal)} ${offset(plan.stopAtMs)}`,
    `KILL ${offset(plan.killAtMs)}`,
    `deadline ${offset(plan.deadlineMs)}`,
  ];
  return steps.join(', ');
}
