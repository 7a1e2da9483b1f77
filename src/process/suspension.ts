import type { Logger } from '../log/logger.js';

/** What the watch needs of the worker. */
export interface Suspendable {
  /** True when the worker is stopped (state T). */
  isSuspended(): boolean;
  /** Sends it SIGCONT the way forwarded signals go (its process group with -g). */
  resume(): void;
}

/**
 * Notices that the worker was suspended (a TSTP, TTIN or TTOU it does not handle, or a STOP) and resumes
 * it: no other init does, and the container hangs until something sends CONT. The kernel sends a parent
 * SIGCHLD whenever its child stops, so the worker's state is read on each one: no polling, whatever sent
 * the stop signal. With --job-control a suspension is left as it is (a person pressing Ctrl-Z), until a
 * stop begins: a suspended worker cannot shut down.
 */
export class SuspensionWatch {
  #resumeAlways: boolean;
  /** The suspension under way was left alone and said so. */
  #leftNoticed = false;
  #resumed = 0;
  readonly #onChildSignal = () => this.check();

  constructor(
    private readonly worker: Suspendable,
    private readonly log: Logger,
    jobControl: boolean,
  ) {
    this.#resumeAlways = !jobControl;
  }

  /** Watches from now on, and looks at once: the worker may have been suspended before the watch began. */
  start(): void {
    process.on('SIGCHLD', this.#onChildSignal);
    this.check();
  }

  stop(): void {
    process.off('SIGCHLD', this.#onChildSignal);
  }

  /** Every suspension is ended from now on, one under way too. */
  keepRunning(): void {
    this.#resumeAlways = true;
    this.check();
  }

  check(): void {
    if (!this.worker.isSuspended()) {
      this.#leftNoticed = false;
      return;
    }
    if (this.#resumeAlways) {
      this.worker.resume();
      this.#resumed++;
      this.log.warn(
        { times: this.#resumed },
        'the worker was suspended by a stop signal (a TSTP, TTIN or TTOU it does not handle, or a STOP): resumed it with SIGCONT',
      );
    } else if (!this.#leftNoticed) {
      this.#leftNoticed = true;
      this.log.info('the worker was suspended by a stop signal: left suspended (--job-control) until a CONT or a stop');
    }
  }
}
