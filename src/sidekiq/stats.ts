// Sidekiq's fleet-wide figures for /metrics, as the standalone exporter reads them (Sidekiq::Stats and
// Sidekiq::Queue), in one round trip of a read-only script (stats.lua) whose cost is capped.
import type { Redis } from 'ioredis';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { ThrottledWarnings } from '../log/throttle.js';
import { LuaScript } from '../redis/lua-script.js';
import type { SidekiqKeys } from './keys.js';
import { toEpochSeconds, type Parsed } from './parse.js';
import { MAX_IDENTITIES } from './reader.js';
import statsSource from './stats.lua';

/** The queues read at most (two O(1) commands each); the others are left out with a warning. */
export const MAX_QUEUES = 100;
/** Scrapes within this of a gather share its figures: Sidekiq 6 itself beats every 5 s. */
export const STATS_CACHE_MS = 5_000;
/** A warning about Sidekiq's data is repeated at most this often. */
const WARNING_INTERVAL_MS = 600_000;
/** The script's mark for an oldest job that is not a JSON object. */
const UNREADABLE = '?';
const STATS_SCRIPT = new LuaScript(statsSource);

export interface QueueStats {
  readonly name: string;
  readonly size: number;
  /** Seconds since its oldest job was enqueued; 0 when empty. Undefined when that job is unreadable. */
  readonly latencyS: number | undefined;
}

export interface SidekiqStats {
  readonly processed: number;
  readonly failed: number;
  readonly scheduled: number;
  readonly retry: number;
  readonly dead: number;
  /** Members of `processes`, ghosts included, as Sidekiq's own API counts them. */
  readonly processes: number;
  /** Sum of `busy` over the members read. */
  readonly busy: number;
  /** Sorted by name; at most MAX_QUEUES. */
  readonly queues: readonly QueueStats[];
}

export interface StatsLimits {
  readonly maxQueues: number;
  readonly maxProcesses: number;
}

const HEAD_LENGTH = 8;

/** The script's reply; throws when it does not have the script's shape, warns for what it can skip. */
export function parseStatsReply(reply: unknown, nowEpochS: number, limits: StatsLimits): Parsed<SidekiqStats> {
  if (
    !Array.isArray(reply) ||
    reply.length < HEAD_LENGTH ||
    (reply.length - HEAD_LENGTH) % 3 !== 0 ||
    !reply.every((item) => typeof item === 'string')
  ) {
    throw new Error('the Sidekiq stats script answered in an unknown shape');
  }
  const [processed, failed, scheduled, retry, dead, processes, busy, queueCount] = reply
    .slice(0, HEAD_LENGTH)
    .map(wholeNumber);
  const warnings: string[] = [];
  const queues: QueueStats[] = [];
  for (let index = HEAD_LENGTH; index < reply.length; index += 3) {
    const [name = '', size = '', enqueuedAt = ''] = reply.slice(index, index + 3) as string[];
    if (enqueuedAt === UNREADABLE)
      warnings.push(
        `Sidekiq queue ${JSON.stringify(name)}: its oldest job is not a JSON object, so its latency is not reported`,
      );
    queues.push({
      name,
      size: wholeNumber(size),
      latencyS: enqueuedAt === UNREADABLE ? undefined : latency(enqueuedAt, nowEpochS),
    });
  }
  if ((queueCount ?? 0) > limits.maxQueues)
    warnings.push(`Sidekiq has ${queueCount} queues: metrics cover the first ${limits.maxQueues} by name`);
  if ((processes ?? 0) > limits.maxProcesses)
    warnings.push(
      `Sidekiq processes has ${processes} members: sidekiq_busy_workers adds up the busy of ${limits.maxProcesses} of them`,
    );
  return {
    value: {
      processed: processed ?? 0,
      failed: failed ?? 0,
      scheduled: scheduled ?? 0,
      retry: retry ?? 0,
      dead: dead ?? 0,
      processes: processes ?? 0,
      busy: busy ?? 0,
      queues,
    },
    warnings,
  };
}

/** Counters Sidekiq keeps as strings; a corrupt one reads as 0, as Sidekiq's own `to_i` does. */
function wholeNumber(text: string): number {
  const value = Number.parseInt(text, 10);
  return Number.isFinite(value) && value >= 0 ? value : 0;
}

/** As Sidekiq::Queue#latency: now less the oldest job's enqueue time, 0 for an empty queue or a job without one. */
function latency(enqueuedAt: string, nowEpochS: number): number {
  const time = Number(enqueuedAt);
  if (enqueuedAt === '' || !Number.isFinite(time)) return 0;
  return Math.max(0, nowEpochS - toEpochSeconds(time));
}

/** Runs the script once; rejects when Redis does. */
export async function gatherSidekiqStats(
  client: Redis,
  keys: SidekiqKeys,
  limits: StatsLimits,
  clock: Clock,
): Promise<Parsed<SidekiqStats>> {
  const reply = await STATS_SCRIPT.run(
    client,
    [],
    [keys.prefix, String(limits.maxQueues), String(limits.maxProcesses)],
  );
  return parseStatsReply(reply, clock.epochMs() / 1000, limits);
}

export const DEFAULT_LIMITS: StatsLimits = { maxQueues: MAX_QUEUES, maxProcesses: MAX_IDENTITIES };

/**
 * Shares one gather between every scrape within STATS_CACHE_MS, and joins the gather under way, so
 * scrapes however frequent cost Redis one script run per period. A failed gather is remembered too.
 */
export class CachedSidekiqStats {
  #cached: { atMs: number; stats: SidekiqStats | undefined } | undefined;
  #pending: Promise<SidekiqStats | undefined> | undefined;
  readonly #warnings: ThrottledWarnings;

  constructor(
    /** Undefined when Redis cannot be asked now. */
    private readonly gather: () => Promise<Parsed<SidekiqStats>> | undefined,
    log: Logger,
    private readonly clock: Clock,
    private readonly cacheMs = STATS_CACHE_MS,
  ) {
    this.#warnings = new ThrottledWarnings(log, WARNING_INTERVAL_MS, clock);
  }

  /** The figures of the last gather within the cache period; undefined when Redis did not give them. Never rejects. */
  get(): Promise<SidekiqStats | undefined> {
    const cached = this.#cached;
    if (cached !== undefined && this.clock.now() - cached.atMs < this.cacheMs) return Promise.resolve(cached.stats);
    this.#pending ??= this.#gather().finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  async #gather(): Promise<SidekiqStats | undefined> {
    let stats: SidekiqStats | undefined;
    try {
      const parsed = await this.gather();
      for (const warning of parsed?.warnings ?? []) this.#warnings.warn(warning, {}, warning);
      stats = parsed?.value;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.#warnings.warn(
        'gather failed',
        { reason },
        "Sidekiq's figures could not be read from Redis; /metrics leaves them out",
      );
    }
    this.#cached = { atMs: this.clock.now(), stats };
    return stats;
  }
}
