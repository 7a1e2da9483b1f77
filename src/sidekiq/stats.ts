// Sidekiq's fleet-wide figures for /metrics, as the standalone exporter reads them (Sidekiq::Stats,
// Sidekiq::Queue, Sidekiq::ProcessSet, Sidekiq::Workers), in one round trip of a read-only script
// (stats.lua) whose cost is capped.
import type { Redis } from 'ioredis';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { ThrottledWarnings } from '../log/throttle.js';
import { classifyRedisError } from '../redis/health.js';
import { LuaScript } from '../redis/lua-script.js';
import type { SidekiqKeys } from './keys.js';
import { toEpochSeconds, type Parsed } from './parse.js';
import { MAX_IDENTITIES, MAX_VALUE_BYTES } from './reader.js';
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

/** What the processes that serve a queue (its name in their `queues`) hold, as the exporter adds them up. */
export interface ServingStats {
  readonly queue: string;
  readonly processes: number;
  /** The sum of their concurrency. */
  readonly workers: number;
  /** The sum of their busy count, whatever queue the busy threads took their job from. */
  readonly busy: number;
}

/** The jobs running from a queue, from the processes' work hashes. */
export interface RunningStats {
  readonly queue: string;
  readonly jobs: number;
  /** Seconds since the oldest of them started. */
  readonly maxProcessingS: number;
}

export interface HostStats {
  readonly host: string;
  readonly quiet: number;
  readonly notQuiet: number;
  /** The sum of their resident set in bytes; undefined when none reports one (Sidekiq before 6.2). */
  readonly memoryBytes: number | undefined;
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
  /** Sum of the concurrency of the processes read whose hash has not expired. */
  readonly workers: number;
  /** Jobs in every queue. */
  readonly enqueued: number;
  /** Sorted by name; at most MAX_QUEUES. */
  readonly queues: readonly QueueStats[];
  /** Each sorted by name. */
  readonly hosts: readonly HostStats[];
  readonly serving: readonly ServingStats[];
  readonly running: readonly RunningStats[];
}

export interface StatsLimits {
  readonly maxQueues: number;
  readonly maxProcesses: number;
}

const UNKNOWN_SHAPE = 'the Sidekiq stats script answered in an unknown shape';
type Row = readonly (string | number)[];

/** The script's reply; throws when it does not have the script's shape, warns for what it can skip. */
export function parseStatsReply(reply: unknown, nowEpochS: number, limits: StatsLimits): Parsed<SidekiqStats> {
  const head = decodeReply(reply);
  const count = (field: string): number => {
    const value = head[field];
    if (typeof value !== 'number') throw new Error(UNKNOWN_SHAPE);
    return value;
  };
  const counter = (field: string): number => {
    const value = head[field];
    if (typeof value !== 'string') throw new Error(UNKNOWN_SHAPE);
    return wholeNumber(value);
  };
  const warnings: string[] = [];
  const queues = rows(head.queues, ['string', 'number', 'string']).map(([name, size, enqueuedAt]) => {
    if (enqueuedAt === UNREADABLE)
      warnings.push(
        `Sidekiq queue ${JSON.stringify(name)}: its oldest job is not a JSON object, so its latency is not reported`,
      );
    return {
      name: String(name),
      size: Number(size),
      latencyS: enqueuedAt === UNREADABLE ? undefined : latency(String(enqueuedAt), nowEpochS),
    };
  });
  const queueCount = count('queueCount');
  const processes = count('processes');
  const unreadable = count('unreadable');
  if (queueCount > limits.maxQueues)
    warnings.push(`Sidekiq has ${queueCount} queues: metrics cover the first ${limits.maxQueues} by name`);
  if (processes > limits.maxProcesses)
    warnings.push(
      `Sidekiq processes has ${processes} members: the process figures cover the first ${limits.maxProcesses} by identity`,
    );
  if (unreadable > 0)
    warnings.push(`${unreadable} Sidekiq processes have an info field that is not a JSON object: they are left out`);
  return {
    value: {
      processed: counter('processed'),
      failed: counter('failed'),
      scheduled: count('scheduled'),
      retry: count('retry'),
      dead: count('dead'),
      processes,
      busy: count('busy'),
      workers: count('workers'),
      enqueued: count('enqueued'),
      queues,
      hosts: byName(
        rows(head.hosts, ['string', 'number', 'number', 'number']).map(([host, quiet, notQuiet, rssKb]) => ({
          host: String(host),
          quiet: Number(quiet),
          notQuiet: Number(notQuiet),
          memoryBytes: Number(rssKb) < 0 ? undefined : Number(rssKb) * 1024,
        })),
        (host) => host.host,
      ),
      serving: byName(
        rows(head.serving, ['string', 'number', 'number', 'number']).map(([queue, processCount, workers, busy]) => ({
          queue: String(queue),
          processes: Number(processCount),
          workers: Number(workers),
          busy: Number(busy),
        })),
        (serving) => serving.queue,
      ),
      running: byName(
        rows(head.running, ['string', 'number', 'number']).map(([queue, jobs, oldestRunAt]) => ({
          queue: String(queue),
          jobs: Number(jobs),
          maxProcessingS: Math.max(0, Math.floor(nowEpochS - Number(oldestRunAt))),
        })),
        (running) => running.queue,
      ),
    },
    warnings,
  };
}

function decodeReply(reply: unknown): Record<string, unknown> {
  if (typeof reply !== 'string') throw new Error(UNKNOWN_SHAPE);
  let decoded: unknown;
  try {
    decoded = JSON.parse(reply);
  } catch {
    throw new Error(UNKNOWN_SHAPE);
  }
  if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded)) throw new Error(UNKNOWN_SHAPE);
  return decoded as Record<string, unknown>;
}

/** A list of rows of the given column types; Lua's cjson writes an empty list as `{}`. */
function rows(value: unknown, columns: readonly ('string' | 'number')[]): Row[] {
  if (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0)
    return [];
  if (!Array.isArray(value)) throw new Error(UNKNOWN_SHAPE);
  return value.map((row: unknown) => {
    if (
      !Array.isArray(row) ||
      row.length !== columns.length ||
      !columns.every((type, index) => typeof row[index] === type)
    )
      throw new Error(UNKNOWN_SHAPE);
    return row as Row;
  });
}

function byName<T>(items: T[], name: (item: T) => string): T[] {
  return items.sort((a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0));
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

/**
 * Runs the script once; rejects when Redis does. `fleetKey` keeps the reply STATS_CACHE_MS for every
 * drain-init of the fleet (the figures are the same for all of them).
 */
export async function gatherSidekiqStats(
  client: Redis,
  keys: SidekiqKeys,
  fleetKey: string,
  limits: StatsLimits,
  clock: Clock,
): Promise<Parsed<SidekiqStats>> {
  const reply = await STATS_SCRIPT.run(
    client,
    [fleetKey],
    [
      keys.prefix,
      String(limits.maxQueues),
      String(limits.maxProcesses),
      String(STATS_CACHE_MS),
      String(MAX_VALUE_BYTES),
    ],
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
      // Redis down, refusing, or a key of another type: the connection's one line says it.
      if (classifyRedisError(error, 'read').kind === 'other')
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
