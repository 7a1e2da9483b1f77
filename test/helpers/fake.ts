import { pino, type Logger } from 'pino';
import type { Timers } from '../../src/stop/sequence.js';
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

/** Timers driven by hand: `advance(ms)` runs what falls due, in time order. */
export class FakeTimers implements Timers {
  #now = 1_000;
  #queue: { at: number; seq: number; action: () => void }[] = [];
  #seq = 0;

  now(): number {
    return this.#now;
  }

  schedule(delayMs: number, action: () => void): () => void {
    const entry = { at: this.#now + delayMs, seq: this.#seq++, action };
    this.#queue.push(entry);
    return () => {
      this.#queue = this.#queue.filter((queued) => queued !== entry);
    };
  }

  get pending(): number {
    return this.#queue.length;
  }

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
}

/** Sidekiq's defaults with a 60 s grace period: TSTP now, TERM at +30 s, KILL at +58 s. */
export const SIDEKIQ_STOP_SETTINGS: StopSettings = {
  preset: 'sidekiq',
  gracePeriodMs: 60_000,
  shutdownTimeoutMs: 25_000,
  shutdownTimeoutSource: 'sidekiq default',
  stopMarginMs: 5_000,
  killMarginMs: 2_000,
  quietSignal: 20,
  stopSignal: 15,
};
