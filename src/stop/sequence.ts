// The stop sequence: the platform's SIGTERM becomes quiet, then stop, then kill, each at its time on the
// injected clock; what it does to the worker goes through WorkerControl.
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { parseSignal, signalName } from '../process/signals.js';
import type { StopSettings } from './settings.js';
import { describePlan, planStop, type StopPlan } from './timeline.js';
import type { WorkerControl } from './worker.js';

export type StopPhase = 'running' | 'quieting' | 'stopping' | 'killing';

export type PhaseListener = (phase: StopPhase, plan: StopPlan, sinceT0Ms: number) => void;

const SIGTERM = parseSignal('TERM');
const SIGINT = parseSignal('INT');

/** TERM and INT start the stop sequence (and move it on); every other signal is forwarded. */
export function startsStop(signal: number): boolean {
  return signal === SIGTERM || signal === SIGINT;
}

/**
 * Turns the platform's SIGTERM (or a SIGINT) into quiet, then stop, then kill, each at its time.
 * A second SIGTERM is ignored; each further SIGINT moves to the next phase at once. Once the child
 * has exited, every signal is left to the forwarder.
 */
export class StopSequence {
  #phase: StopPhase = 'running';
  #plan: StopPlan | undefined;
  #t0 = 0;
  #cancels: (() => void)[] = [];
  #finished = false;
  /** A stop signal came and waits for a fresh report of the worker before the stop is planned. */
  #starting = false;
  readonly #listeners: PhaseListener[] = [];

  constructor(
    private settings: StopSettings,
    private readonly worker: WorkerControl,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Called at each phase entered, in the order they were added. */
  onPhase(listener: PhaseListener): void {
    this.#listeners.push(listener);
  }

  get phase(): StopPhase {
    return this.#phase;
  }

  get plan(): StopPlan | undefined {
    return this.#plan;
  }

  /** The platform's deadline on the clock, once a stop has begun. */
  get deadline(): number | undefined {
    return this.#plan === undefined ? undefined : this.#t0 + this.#plan.deadlineMs;
  }

  /** When the kill step is due on the clock, once a stop has begun. */
  get killAt(): number | undefined {
    return this.#plan === undefined ? undefined : this.#t0 + this.#plan.killAtMs;
  }

  /**
   * The signal interceptor: takes TERM and INT over, leaves every other signal to be forwarded. When the
   * worker's report must be read afresh first, the stop is planned once it is, from the moment the signal came.
   */
  handleSignal(signal: number): boolean {
    if (this.#finished || !startsStop(signal)) return false;
    const name = signalName(signal);
    if (this.#phase === 'running' && !this.#starting) {
      const receivedAt = this.clock.now();
      const fresh = this.worker.freshReport?.();
      if (fresh === undefined) {
        this.#begin(signal, receivedAt);
        return true;
      }
      this.#starting = true;
      void fresh.then(() => {
        this.#starting = false;
        if (!this.#finished && this.#phase === 'running') this.#begin(signal, receivedAt);
      });
    } else if (this.#phase === 'running') {
      this.log.info({ signal: name }, 'received signal again: ignored, the stop is about to begin');
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

  /** New settings (the auto preset learning that the child is Sidekiq); ignored once a stop has begun. */
  useSettings(settings: StopSettings): void {
    if (this.#phase === 'running') this.settings = settings;
  }

  /** Called when the child has exited: no timer outlives it. */
  finish(): void {
    this.#finished = true;
    for (const cancel of this.#cancels.splice(0)) cancel();
  }

  #begin(trigger: number, receivedAt: number): void {
    const plan = planStop(this.settings, trigger);
    this.#plan = plan;
    this.#t0 = receivedAt;
    for (const warning of plan.warnings) this.log.warn({ preset: this.settings.preset }, warning);
    this.log.info(
      {
        signal: signalName(trigger),
        plan: describePlan(plan),
        preset: this.settings.preset,
        gracePeriodMs: this.settings.gracePeriodMs,
        shutdownTimeoutMs: this.settings.shutdownTimeoutMs,
        shutdownTimeoutSource: this.settings.shutdownTimeoutSource,
        stopMarginMs: this.settings.stopMarginMs,
        killMarginMs: this.settings.killMarginMs,
        ...this.#jobsInFlight(),
      },
      `stop requested: ${describePlan(plan)}`,
    );
    this.#at(plan.killAtMs, () => this.#kill());
    // Before the quiet signal: a CONT sent after it would discard it while it is still pending.
    this.worker.keepRunning();
    if (plan.quietSignal === undefined) {
      this.#stop();
      return;
    }
    if (this.worker.report()?.registered === false) {
      // Sidekiq installs its handlers only once booted: a TSTP before that would suspend it, or be discarded.
      this.log.info(
        { signal: signalName(plan.quietSignal) },
        'the worker has not registered with Sidekiq yet, so it cannot be quieted: stopping it now',
      );
      this.#stop();
      return;
    }
    this.#enter('quieting');
    this.worker.signal(plan.quietSignal);
    this.log.info({ signal: signalName(plan.quietSignal) }, 'sent quiet signal');
    this.#at(plan.stopAtMs, () => this.#stop());
  }

  #advance(): void {
    if (this.#phase === 'quieting') this.#stop();
    else if (this.#phase === 'stopping') this.#kill();
  }

  #stop(): void {
    if (this.#phase === 'stopping' || this.#phase === 'killing' || this.#plan === undefined) return;
    this.#enter('stopping');
    this.worker.signal(this.#plan.stopSignal);
    // A worker that a job-control signal suspended can only act on its stop signal once resumed; one that
    // runs gets no CONT, as under tini.
    this.worker.keepRunning();
    this.log.info(
      { signal: signalName(this.#plan.stopSignal), sinceT0Ms: this.#sinceT0(), ...this.#jobsInFlight() },
      'sent stop signal',
    );
  }

  #kill(): void {
    if (this.#phase === 'killing') return;
    this.#enter('killing');
    this.log.warn(
      { sinceT0Ms: this.#sinceT0(), ...this.#jobsInFlight() },
      'the worker is still running: sending SIGKILL to its process group',
    );
    this.worker.kill();
  }

  #enter(phase: StopPhase): void {
    this.#phase = phase;
    const plan = this.#plan;
    if (plan !== undefined) for (const listener of this.#listeners) listener(phase, plan, this.#sinceT0());
  }

  #at(offsetMs: number, action: () => void): void {
    const delay = Math.max(0, this.#t0 + offsetMs - this.clock.now());
    this.#cancels.push(this.clock.schedule(delay, action, true));
  }

  #jobsInFlight(): { jobsInFlight?: number } {
    const worker = this.worker.report();
    return worker === undefined ? {} : { jobsInFlight: worker.jobsInFlight };
  }

  #sinceT0(): number {
    return Math.round(this.clock.now() - this.#t0);
  }
}
