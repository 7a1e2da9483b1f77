import type { Logger } from '../log/logger.js';
import type { NativeAddon } from '../native/addon.js';

/** As tini does, reap on every SIGCHLD and once a second in case a SIGCHLD was coalesced away. */
const SWEEP_INTERVAL_MS = 1_000;

/** Reaps orphans re-parented to drain-init, leaving Node's own children for Node to wait on. */
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
