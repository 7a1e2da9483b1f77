import { systemClock, type Clock } from '../lib/clock.js';
import type { Logger } from './logger.js';

/**
 * Logs each kind of warning at most once per interval, so a flood of bad input cannot flood the log
 * (every line is a synchronous write to stderr). A line says how many of its kind were held back since
 * the last one.
 */
export class ThrottledWarnings {
  readonly #lastByKind = new Map<string, { atMs: number; heldBack: number }>();

  constructor(
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly clock: Pick<Clock, 'now'> = systemClock,
    /** Kinds remembered at most; the oldest is forgotten first. */
    private readonly maxKinds = 100,
  ) {}

  warn(kind: string, fields: Readonly<Record<string, unknown>>, message: string): void {
    const nowMs = this.clock.now();
    const last = this.#lastByKind.get(kind);
    if (last !== undefined && nowMs - last.atMs < this.intervalMs) {
      last.heldBack++;
      return;
    }
    this.log.warn(
      { ...fields, ...(last !== undefined && last.heldBack > 0 ? { heldBack: last.heldBack } : {}) },
      message,
    );
    this.#lastByKind.delete(kind);
    this.#lastByKind.set(kind, { atMs: nowMs, heldBack: 0 });
    const oldest = this.#lastByKind.keys().next().value;
    if (this.#lastByKind.size > this.maxKinds && oldest !== undefined) this.#lastByKind.delete(oldest);
  }

  /**
   * A burst of warning lines (a read of hostile data may find thousands): grouped by `kindOf`, one line per
   * kind, the first of its lines with the count of the others (`alike`), each kind throttled as `warn` is.
   */
  warnGrouped(messages: readonly string[], kindOf: (message: string) => string): void {
    const groups = new Map<string, { first: string; count: number }>();
    for (const message of messages) {
      const kind = kindOf(message);
      const group = groups.get(kind);
      if (group === undefined) groups.set(kind, { first: message, count: 1 });
      else group.count++;
    }
    for (const [kind, { first, count }] of groups) this.warn(kind, count > 1 ? { alike: count - 1 } : {}, first);
  }
}
