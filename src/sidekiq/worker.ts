// The stop rules of a Sidekiq worker, on top of the plain worker control: its quiet and stop signals go
// to the Sidekiq processes themselves, a stop waits for a fresh read of a worker that looked unregistered,
// the job record gets a last look before drain-init's SIGKILL, and the watcher's reads tell the stop
// when the worker is drained and the auto preset that the child is Sidekiq after all.
import { within, type Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { processState } from '../process/proc.js';
import { parseSignal } from '../process/signals.js';
import type { WorkerControl, WorkerReport } from '../stop/worker.js';
import { isDrained, isRegistered, type WorkerView } from './view.js';
import type { SidekiqWatcher } from './watcher.js';

/** How long a stop may wait for a fresh read of Sidekiq's data; a slower Redis leaves the last read to decide. */
export const FRESH_READ_WAIT_MS = 250;
const SIGCONT = parseSignal('CONT');

export interface SidekiqWorkerOptions {
  /** -g: signals go to the child's process group, which holds the Sidekiq processes too. */
  readonly processGroup: boolean;
  /** The supervised child, undefined before it starts and after it exits. */
  readonly childPid: () => number | undefined;
  /** Sends a signal to one process of the supervised tree. */
  readonly sendTo: (pid: number, signal: number) => void;
  /** Runs before drain-init's SIGKILL; bounded by whoever gives it. */
  readonly beforeKill?: (() => Promise<void>) | undefined;
  /** The jobs in flight as the job record holds them (exact from the fetch on); undefined: as the last heartbeat showed. */
  readonly jobsInFlight?: () => number | undefined;
}

export class SidekiqWorker implements WorkerControl {
  #registered = false;
  readonly #drained: (() => void)[] = [];
  readonly #registration: (() => void)[] = [];

  constructor(
    private readonly plain: WorkerControl,
    private readonly watcher: SidekiqWatcher,
    private readonly options: SidekiqWorkerOptions,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    watcher.onView((view, previous) => this.#follow(view, previous));
  }

  /** Called at each read that finds every supervised process quiet and running no job: stopping it now loses nothing. */
  onDrained(listener: () => void): void {
    this.#drained.push(listener);
  }

  /** Called once, when a supervised process registers with Sidekiq for the first time in drain-init's life. */
  onRegistered(listener: () => void): void {
    this.#registration.push(listener);
  }

  /**
   * Without -g the quiet and stop signals go to the Sidekiq processes themselves when the child only wraps
   * them (sh -c): a shell neither passes a signal on nor survives TERM long enough for its worker to drain.
   */
  signal(signal: number): void {
    const wrapped = this.#wrapped();
    if (wrapped.length === 0) this.plain.signal(signal);
    for (const pid of wrapped) this.options.sendTo(pid, signal);
  }

  kill(): void {
    const first = this.options.beforeKill?.() ?? Promise.resolve();
    void first.then(() => this.plain.kill());
  }

  keepRunning(): void {
    this.plain.keepRunning();
    for (const pid of this.#wrapped()) if (processState(pid) === 'T') this.options.sendTo(pid, SIGCONT);
  }

  report(): WorkerReport | undefined {
    const { view } = this.watcher;
    const registered = isRegistered(view);
    if (registered === undefined) return undefined;
    return { registered, jobsInFlight: this.options.jobsInFlight?.() ?? view.jobsInFlight };
  }

  /** A worker that looked unregistered at the last read may have registered a moment ago: it must still be quieted. */
  freshReport(): Promise<void> | undefined {
    if (isRegistered(this.watcher.view) !== false) return undefined;
    return within(this.clock, this.watcher.poll(), FRESH_READ_WAIT_MS, undefined);
  }

  /** The Sidekiq processes below the child, when the child only wraps them (none with -g: the group has them). */
  #wrapped(): number[] {
    if (this.options.processGroup) return [];
    const childPid = this.options.childPid();
    return this.watcher.view.processes.map((process) => process.pid).filter((pid) => pid !== childPid);
  }

  #follow(view: WorkerView, previous: WorkerView): void {
    logIdentities(this.log, view, previous);
    if (isDrained(view)) for (const listener of this.#drained) listener();
    if (!this.#registered && view.processes.length > 0) {
      this.#registered = true;
      for (const listener of this.#registration) listener();
    }
  }
}

function logIdentities(log: Logger, view: WorkerView, previous: WorkerView): void {
  const identities = view.processes.map((process) => process.identity);
  const before = new Set(previous.processes.map((process) => process.identity));
  if (identities.length === before.size && identities.every((identity) => before.has(identity))) return;
  if (identities.length === 0) log.info('the worker is no longer registered with Sidekiq');
  else log.info({ identities }, 'found the worker in Sidekiq');
}
