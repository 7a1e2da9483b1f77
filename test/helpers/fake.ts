import { pino, type Logger } from 'pino';
import type { Cancel, Clock } from '../../src/lib/clock.js';
import type { StopSettings } from '../../src/stop/settings.js';

/** A logger whose records land in an array. */
export function captureLogger(): { log: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'trace' },
    { write: (line: string) => records.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { log, records };
}

/** A clock driven by hand: `advance(ms)` runs what falls due, in time order. */
export class FakeClock implements Clock {
  #now = 1_000;
  /** Wall-clock ms at monotonic 0. */
  readonly #epochAtZero: number;
  #queue: { at: number; seq: number; action: () => void }[] = [];
  #seq = 0;

  constructor(epochMs = Date.UTC(2026, 11, 4, 12)) {
    this.#epochAtZero = epochMs - this.#now;
  }

  now(): number {
    return this.#now;
  }

  epochMs(): number {
    return this.#epochAtZero + this.#now;
  }

  schedule(delayMs: number, action: () => void): Cancel {
    const entry = { at: this.#now + delayMs, seq: this.#seq++, action };
    this.#queue.push(entry);
    return () => {
      this.#queue = this.#queue.filter((queued) => queued !== entry);
    };
  }

  every(intervalMs: number, action: () => void): Cancel {
    let cancel: Cancel = () => {};
    const tick = (): void => {
      cancel = this.schedule(intervalMs, tick);
      action();
    };
    cancel = this.schedule(intervalMs, tick);
    return () => cancel();
  }

  get pending(): number {
    return this.#queue.length;
  }

  /** Runs what falls due within `ms`, in time order. */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      this.#queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#queue[0];
      if (next === undefined || next.at > until) break;
      this.#queue.shift();
      this.#now = next.at;
      next.action();
    }
    this.#now = until;
  }

  /**
   * As advance, for code that awaits: after each timer, the promises it settled run their callbacks (and
   * schedule what they schedule) before the clock moves on.
   */
  async advanceAsync(ms: number): Promise<void> {
    const until = this.#now + ms;
    await flushPromises();
    for (;;) {
      this.#queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#queue[0];
      if (next === undefined || next.at > until) break;
      this.#queue.shift();
      this.#now = next.at;
      next.action();
      await flushPromises();
    }
    this.#now = until;
  }
}

/** Lets every pending promise callback run (they all run before an immediate does). */
export function flushPromises(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Sidekiq's defaults with a 60 s grace period: TSTP now, TERM at +30 s, KILL at +58 s. */
export const SIDEKIQ_STOP_SETTINGS: StopSettings = {
  preset: 'sidekiq',
  gracePeriodMs: 60_000,
  gracePeriodSource: '--grace-period',
  stopDelayMs: 0,
  shutdownTimeoutMs: 25_000,
  shutdownTimeoutSource: 'sidekiq default',
  stopMarginMs: 5_000,
  killMarginMs: 2_000,
  quietSignal: 20,
  stopSignal: 15,
};

/** The generic preset over the same grace period: no quiet signal, no shutdown timeout, no stop margin. */
export const GENERIC_STOP_SETTINGS: StopSettings = {
  ...SIDEKIQ_STOP_SETTINGS,
  preset: 'generic',
  quietSignal: undefined,
  shutdownTimeoutMs: 0,
  stopMarginMs: 0,
};
