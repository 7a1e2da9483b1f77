// The fleet's platform stops in Redis (stops.lua): this instance marks its stop as it begins and unmarks
// it as it ends, and /metrics reads how many stops of the whole fleet ran out of time, counting those
// whose drain-init was killed before it could say. A drain-init cannot report its own death, and it is
// scraped no more once it has exited: the count lives in Redis, and every pod serves it.
import { within, type Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { ThrottledWarnings } from '../log/throttle.js';
import { COMMAND_TIMEOUT_MS, type RedisConnection } from '../redis/connection.js';
import { classifyRedisError } from '../redis/health.js';
import { LuaScript } from '../redis/lua-script.js';
import stopsSource from './stops.lua';

const STOPS_SCRIPT = new LuaScript(stopsSource);
/** A mark outlives its deadline by this before it counts: a drain-init that ended in time has unmarked it by then. */
export const END_SLACK_MS = 10_000;
/** Scrapes within this share one count. */
const COUNT_CACHE_MS = 5_000;
const WARNING_INTERVAL_MS = 600_000;

export class FleetStops {
  readonly #keys: [string, string];
  readonly #warnings: ThrottledWarnings;
  /** The id the stop was marked under; undefined while none is. */
  #marked: string | undefined;
  #cached: { atMs: number; count: Promise<number | undefined> } | undefined;

  constructor(
    private readonly connection: RedisConnection,
    prefix: string,
    /** This instance's id in Redis, as claimed (the one asked for until the claim is made). */
    private readonly instanceId: () => string,
    private readonly clock: Clock,
    log: Logger,
  ) {
    this.#keys = [`${prefix}:stops`, `${prefix}:stops-cut`];
    this.#warnings = new ThrottledWarnings(log, WARNING_INTERVAL_MS, clock);
  }

  /** The platform's stop began: its deadline is `gracePeriodMs` from now. Never waits. */
  begin(gracePeriodMs: number): void {
    this.#marked = this.instanceId();
    void this.#run(['begin', this.#marked, String(Math.round(gracePeriodMs))]);
  }

  /** The stop ended, in time or not (`ranOutOfTime`: drain-init's kill step came); at most 1 s. */
  async end(ranOutOfTime: boolean): Promise<void> {
    if (this.#marked === undefined) return;
    await within(this.clock, this.#run(['end', this.#marked, ranOutOfTime ? '1' : '0']), COMMAND_TIMEOUT_MS, undefined);
  }

  /** The fleet's stops that ran out of time; undefined when Redis does not say. Never rejects. */
  count(): Promise<number | undefined> {
    const cached = this.#cached;
    if (cached !== undefined && this.clock.now() - cached.atMs < COUNT_CACHE_MS) return cached.count;
    const count = this.connection.writable ? this.#run(['count', String(END_SLACK_MS)]) : Promise.resolve(undefined);
    this.#cached = { atMs: this.clock.now(), count };
    return count;
  }

  async #run(args: string[]): Promise<number | undefined> {
    const [stops, cut] = this.#keys;
    // `count` writes too: it unmarks the stops 10 s past their deadline.
    const use = { kind: 'write', keys: { [stops]: 'hash', [cut]: 'string' } } as const;
    try {
      const reply = await STOPS_SCRIPT.run(this.connection.client, this.#keys, args);
      this.connection.commandSucceeded(use);
      return typeof reply === 'number' ? reply : undefined;
    } catch (error) {
      this.connection.commandFailed(error, use);
      // Redis down or refusing is the connection's one line; what is left is this script's own trouble.
      if (classifyRedisError(error).kind !== 'other') return undefined;
      this.#warnings.warn(
        args[0] ?? '',
        { reason: error instanceof Error ? error.message : String(error) },
        `the fleet's stops in Redis could not be ${args[0] === 'count' ? 'read' : 'written'}`,
      );
      return undefined;
    }
  }
}
