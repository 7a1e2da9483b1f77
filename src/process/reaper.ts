import type { Logger } from '../log/logger.js';
import type { NativeAddon } from '../native/addon.js';

/** As tini does, reap on every SIGCHLD and once a second in case a SIGCHLD was coalesced away. */
const SWEEP_INTERVAL_MS = 1_000;

/**
 * Reaps orphans re-parented to drain-init, leaving Node's own children for Node to wait on. The SIGCHLD
 * handler of the native addon reaps them as they exit, as tini does, and wakes JavaScript only when the
 * worker changed state; reaping here too, on what reaches JavaScript and once a second, hands the handler
 * the pids to protect and catches what it left.
 */
export class ZombieReaper {
  #total = 0;
  #timer: NodeJS.Timeout | undefined;
  readonly #onChildSignal = () => this.reap();

  constructor(
    private readonly addon: NativeAddon,
    private readonly log: Logger,
    private readonly protectedPids: () => readonly number[],
  ) {}

  get total(): number {
    return this.#total;
  }

  start(): void {
    process.on('SIGCHLD', this.#onChildSignal);
    try {
      this.addon.reapInSignalHandler();
    } catch (error) {
      this.log.warn(
        { err: (error as Error).message },
        'cannot reap in the SIGCHLD handler: reaping on each SIGCHLD Node passes on, which costs more CPU',
      );
    }
    this.#timer = setInterval(this.#onChildSignal, SWEEP_INTERVAL_MS).unref();
  }

  stop(): void {
    process.off('SIGCHLD', this.#onChildSignal);
    clearInterval(this.#timer);
  }

  reap(): number {
    const reaped = this.addon.reapOrphans(this.protectedPids());
    if (reaped > 0) {
      this.#total += reaped;
      this.log.debug({ reaped, total: this.#total }, 'reaped zombies');
    }
    return reaped;
  }
}
