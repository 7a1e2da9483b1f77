// The stop sequence: the platform's SIGTERM becomes quiet, then stop, then kill, each at its time on the
// injected clock; what it does to the worker goes through WorkerControl.
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { parseSignal, signalName } from '../process/signals.js';
import type { StopSettings } from './settings.js';
import { describePlan, planStop, type StopPlan } from './timeline.js';
import type { WorkerControl } from './worker.js';

/** `delaying`: the stop delay after the platform's SIGTERM, before the first signal. */
export type StopPhase = 'running' | 'delaying' | 'quieting' | 'stopping' | 'killing';

/** `stop`: the platform's (SIGTERM, SIGINT); `restart`: the restart signal's, after which a new worker starts. */
export type StopKind = 'stop' | 'restart';

export type PhaseListener = (phase: StopPhase, plan: StopPlan, sinceT0Ms: number) => void;

const SIGTERM = parseSignal('TERM');
const SIGINT = parseSignal('INT');

/** TERM and INT start the stop sequence (and move it on); every other signal is forwarded. */
export function startsStop(signal: number): boolean {
  return signal === SIGTERM || signal === SIGINT;
}

/**
 * Turns the platform's SIGTERM (or a SIGINT) into the stop delay, quiet, then stop, then kill, each at its
 * time. A second SIGTERM is ignored; each further SIGINT moves to the next phase at once. A restart runs
 * the same sequence (without the stop delay) on the worker, and a SIGTERM during it makes it the stop.
 * Once the child has exited, every signal is left to the forwarder.
 */
export class StopSequence {
  #phase: StopPhase = 'running';
  #kind: StopKind | undefined;
  #plan: StopPlan | undefined;
  #t0 = 0;
  #cancels: (() => void)[] = [];
  #finished = false;
  /** A stop signal came and waits for a fresh report of the worker before the stop is planned. */
  #starting: StopKind | undefined;
  readonly #listeners: PhaseListener[] = [];
  readonly #stopListeners: (() => void)[] = [];

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

  /** Called once when the platform's stop begins, or a restart under way becomes the stop. */
  onStopRequested(listener: () => void): void {
    this.#stopListeners.push(listener);
  }

  get phase(): StopPhase {
    return this.#phase;
  }

  /** The platform asked for the stop: the worker's exit is the end. */
  get stopRequested(): boolean {
    return this.#kind === 'stop' || this.#starting === 'stop';
  }

  /** The worker is being stopped to be started again. */
  get restarting(): boolean {
    return this.#kind === 'restart';
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
    if (this.#kind === 'restart' || this.#starting === 'restart') {
      this.log.info({ signal: name }, 'received signal during a restart: the worker is stopped and not started again');
      this.#starting = this.#starting === undefined ? undefined : 'stop';
      this.#kind = this.#kind === undefined ? undefined : 'stop';
      this.#stopRequested();
    } else if (this.#phase === 'running' && this.#starting === undefined) {
      this.#request('stop', signal);
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

  /**
   * The restart signal: the worker gets the stop sequence (no stop delay: the pod stays where it is), and
   * the run loop starts a new one once it has exited. Ignored while a stop or a restart is under way.
   */
  restart(signal: number): void {
    const name = signalName(signal);
    if (this.#finished) this.log.info({ signal: name }, 'received the restart signal: no worker runs');
    else if (this.#phase === 'running' && this.#starting === undefined) {
      this.log.info({ signal: name }, 'received the restart signal: stopping the worker to start it again');
      this.#request('restart', SIGTERM);
    } else
      this.log.info({ signal: name, phase: this.#phase }, 'received the restart signal: ignored, a stop is under way');
  }

  /** The restarted worker runs: back to the running phase, with no timer left of the old one's stop. */
  restarted(): void {
    if (this.#kind !== 'restart') return;
    for (const cancel of this.#cancels.splice(0)) cancel();
    this.#phase = 'running';
    this.#kind = undefined;
    this.#plan = undefined;
  }

  /** Plans at once, or once the worker's report has been read afresh, from the moment the signal came. */
  #request(kind: StopKind, trigger: number): void {
    const receivedAt = this.clock.now();
    if (kind === 'stop') this.#stopRequested();
    const fresh = this.worker.freshReport?.();
    if (fresh === undefined) {
      this.#begin(kind, trigger, receivedAt);
      return;
    }
    this.#starting = kind;
    void fresh.then(() => {
      const starting = this.#starting ?? kind;
      this.#starting = undefined;
      if (!this.#finished && this.#phase === 'running') this.#begin(starting, trigger, receivedAt);
    });
  }

  #stopRequested(): void {
    for (const listener of this.#stopListeners.splice(0)) listener();
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

  #begin(kind: StopKind, trigger: number, receivedAt: number): void {
    // A restart has no stop delay: the pod keeps its place behind the load balancer.
    const settings = kind === 'restart' ? { ...this.settings, stopDelayMs: 0 } : this.settings;
    const plan = planStop(settings, trigger);
    this.#kind = kind;
    this.#plan = plan;
    this.#t0 = receivedAt;
    for (const warning of plan.warnings) this.log.warn({ preset: settings.preset }, warning);
    this.log.info(
      {
        signal: signalName(trigger),
        plan: describePlan(plan),
        preset: settings.preset,
        gracePeriodMs: settings.gracePeriodMs,
        gracePeriodSource: settings.gracePeriodSource,
        stopDelayMs: settings.stopDelayMs,
        shutdownTimeoutMs: settings.shutdownTimeoutMs,
        shutdownTimeoutSource: settings.shutdownTimeoutSource,
        stopMarginMs: settings.stopMarginMs,
        killMarginMs: settings.killMarginMs,
        ...this.#jobsInFlight(),
      },
      `${kind === 'restart' ? 'restart' : 'stop'} requested: ${describePlan(plan)}`,
    );
    this.#at(plan.killAtMs, () => this.#kill());
    if (plan.firstSignalAtMs > 0) {
      this.#enter('delaying');
      this.#at(plan.firstSignalAtMs, () => this.#firstSignal());
      return;
    }
    this.#firstSignal();
  }

  #firstSignal(): void {
    const plan = this.#plan;
    if ((this.#phase !== 'running' && this.#phase !== 'delaying') || plan === undefined) return;
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
    this.log.info({ signal: signalName(plan.quietSignal), sinceT0Ms: this.#sinceT0() }, 'sent quiet signal');
    this.#at(plan.stopAtMs, () => this.#stop());
  }

  #advance(): void {
    if (this.#phase === 'delaying') this.#firstSignal();
    else if (this.#phase === 'quieting') this.#stop();
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
