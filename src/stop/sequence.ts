import type { Logger } from '../log/logger.js';
import { parseSignal, signalName } from '../process/signals.js';
import type { StopSettings } from './settings.js';
import { describePlan, planStop, type StopPlan } from './timeline.js';

export type StopPhase = 'running' | 'quieting' | 'stopping' | 'killing';

/** Time and timers, injected so the phase machine can be tested with a fake clock. */
export interface Timers {
  now(): number;
  /** Runs `action` after `delayMs`; the returned function cancels it. */
  schedule(delayMs: number, action: () => void): () => void;
}

/** What the sequence does to the worker. */
export interface StopActions {
  /** Sends a signal the way forwarded signals go (the child, or its group with -g). */
  send(signal: number): void;
  /** SIGKILL to the child's whole process group. */
  killGroup(): void;
  /** True when the child is stopped (state T). */
  isSuspended(): boolean;
}

export type PhaseListener = (phase: StopPhase, plan: StopPlan, sinceT0Ms: number) => void;

const SIGTERM = parseSignal('TERM');
const SIGINT = parseSignal('INT');
const SIGCONT = parseSignal('CONT');
/** How long after the quiet signal the child's state is checked for an unwanted suspension. */
export const QUIET_CHECK_DELAY_MS = 250;

/**
 * Turns the platform's SIGTERM (or a SIGINT) into quiet, then stop, then kill, each at its time.
 * A second SIGTERM is ignored; each further SIGINT moves to the next phase at once.
 */
export class StopSequence {
  #phase: StopPhase = 'running';
  #plan: StopPlan | undefined;
  #t0 = 0;
  #cancels: (() => void)[] = [];

  constructor(
    private readonly settings: StopSettings,
    private readonly actions: StopActions,
    private readonly timers: Timers,
    private readonly log: Logger,
    private readonly onPhase: PhaseListener = () => {},
  ) {}

  get phase(): StopPhase {
    return this.#phase;
  }

  get plan(): StopPlan | undefined {
    return this.#plan;
  }

  /** The signal interceptor: takes TERM and INT over, leaves every other signal to be forwarded. */
  handleSignal(signal: number): boolean {
    if (signal !== SIGTERM && signal !== SIGINT) return false;
    const name = signalName(signal);
    if (this.#phase === 'running') {
      this.#begin(name);
    } else if (signal === SIGINT) {
      this.log.info({ signal: name, phase: this.#phase }, 'received signal again: moving to the next phase now');
      this.#advance();
    } else {
      this.log.info({ signal: name, phase: this.#phase }, 'received signal again: ignored, the stop is under way');
    }
    return true;
  }

  /** Called when the worker is known to be quiet with no job left: the stop step moves to now. */
  workerIdle(): void {
    if (this.#phase !== 'quieting') return;
    this.log.info({ sinceT0Ms: this.#sinceT0() }, 'worker is quiet and idle: stopping it now');
    this.#stop();
  }

  /** Called when the child has exited: no timer outlives it. */
  finish(): void {
    for (const cancel of this.#cancels.splice(0)) cancel();
  }

  #begin(trigger: string): void {
    const plan = planStop(this.settings);
    this.#plan = plan;
    this.#t0 = this.timers.now();
    for (const warning of plan.warnings) this.log.warn({ preset: this.settings.preset }, warning);
    this.log.info(
      {
        signal: trigger,
        plan: describePlan(plan),
        preset: this.settings.preset,
        gracePeriodMs: this.settings.gracePeriodMs,
        shutdownTimeoutMs: this.settings.shutdownTimeoutMs,
        shutdownTimeoutSource: this.settings.shutdownTimeoutSource,
        stopMarginMs: this.settings.stopMarginMs,
        killMarginMs: this.settings.killMarginMs,
      },
      `stop requested: ${describePlan(plan)}`,
    );
    this.#at(plan.killAtMs, () => this.#kill());
    if (plan.quietSignal === undefined) {
      this.#stop();
      return;
    }
    this.#enter('quieting');
    this.actions.send(plan.quietSignal);
    this.log.info({ signal: signalName(plan.quietSignal) }, 'sent quiet signal');
    this.#at(QUIET_CHECK_DELAY_MS, () => this.#resumeIfSuspended(plan.quietSignal));
    this.#at(plan.stopAtMs, () => this.#stop());
  }

  #advance(): void {
    if (this.#phase === 'quieting') this.#stop();
    else if (this.#phase === 'stopping') this.#kill();
  }

  #resumeIfSuspended(quietSignal: number | undefined): void {
    if (this.#phase !== 'quieting' || quietSignal === undefined || !this.actions.isSuspended()) return;
    this.actions.send(SIGCONT);
    this.log.warn({ signal: signalName(quietSignal) }, 'the worker does not handle the quiet signal and was suspended by it: resumed it with SIGCONT');
  }

  #stop(): void {
    if (this.#phase === 'stopping' || this.#phase === 'killing' || this.#plan === undefined) return;
    this.#enter('stopping');
    this.actions.send(this.#plan.stopSignal);
    // A worker that a job-control signal suspended can only act on its stop signal once resumed.
    this.actions.send(SIGCONT);
    this.log.info({ signal: signalName(this.#plan.stopSignal), sinceT0Ms: this.#sinceT0() }, 'sent stop signal');
  }

  #kill(): void {
    if (this.#phase === 'killing') return;
    this.#enter('killing');
    this.log.warn({ sinceT0Ms: this.#sinceT0() }, 'the worker is still running: sending SIGKILL to its process group');
    this.actions.killGroup();
  }

  #enter(phase: StopPhase): void {
    this.#phase = phase;
    if (this.#plan !== undefined) this.onPhase(phase, this.#plan, this.#sinceT0());
  }

  #at(offsetMs: number, action: () => void): void {
    const delay = Math.max(0, this.#t0 + offsetMs - this.timers.now());
    this.#cancels.push(this.timers.schedule(delay, action));
  }

  #sinceT0(): number {
    return Math.round(this.timers.now() - this.#t0);
  }
}
