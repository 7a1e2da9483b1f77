// Polls Sidekiq's data in Redis for the processes drain-init supervises. Listing `processes` costs as
// much as the fleet is large, so it is listed only to find the worker (at start, when a known identity
// goes stale, and every DISCOVER_EVERY_MS for processes started later); in between only the hashes of
// the known identities are read.
import type { Cancel, Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import { ThrottledWarnings } from '../log/throttle.js';
import { processTree } from '../process/proc.js';
import type { RedisConnection } from '../redis/connection.js';
import type { SidekiqKeys } from './keys.js';
import { isAlive, supervisedProcesses } from './match.js';
import type { InFlightJob, SidekiqProcess, SidekiqSnapshot } from './parse.js';
import { readIdentities, readSidekiq } from './reader.js';
import { NO_WORKER_SEEN, type WorkerView } from './view.js';

/** While the worker runs: fresh enough for probes, cheap for Redis. */
export const RUNNING_POLL_MS = 2_000;
/** While the worker drains: the stop follows its last heartbeat within this. */
export const DRAINING_POLL_MS = 500;
/**
 * While a worker expected to be Sidekiq has not registered yet: a SIGTERM then stops it at once rather
 * than quieting it, so the view must not miss a registration by long.
 */
export const BOOTING_POLL_MS = 250;
export const DISCOVER_EVERY_MS = 30_000;
/** The warnings of one key (or identity) make one line, at most once per this however often it is read. */
const WARNING_INTERVAL_MS = 600_000;

export interface WatcherOptions {
  /** The hostname Sidekiq writes for processes of this container (sidekiqHostname). */
  readonly hostname: string;
  /** The command line says Sidekiq: poll at the booting pace until it registers. */
  readonly expectSidekiq: boolean;
}

/** Where the watcher reads Sidekiq's data: Redis through the shared connection (sidekiqSource), or a test's fake. */
export interface SidekiqSource {
  /** Connected: a read may be tried. */
  ready(): boolean;
  /** Lists `processes` (this host's members) and reads them. */
  discover(hostname: string): Promise<SidekiqSnapshot>;
  /** Reads the hashes of identities already known. */
  readKnown(identities: readonly string[]): Promise<SidekiqSnapshot>;
  /** Reports the outcome of a read to the connection's outage log. */
  succeeded(): void;
  failed(error: unknown): void;
}

export function sidekiqSource(connection: RedisConnection, keys: SidekiqKeys): SidekiqSource {
  // The hashes of each process are read key by key, a broken one skipped with a warning (reader.ts).
  const reads = { kind: 'read', keys: { [keys.processes]: 'set' } } as const;
  return {
    ready: () => connection.client.status === 'ready',
    discover: (hostname) => readSidekiq(connection.client, { keys, hostname, onlyHostname: true }),
    readKnown: (identities) => readIdentities(connection.client, identities, keys),
    succeeded: () => connection.commandSucceeded(reads),
    failed: (error) => connection.commandFailed(error, reads),
  };
}

export type ViewListener = (view: WorkerView, previous: WorkerView) => void;

/** The supervised processes, from /proc: the child and everything below it. */
export type SupervisedPids = (root: number) => ReadonlySet<number>;

export class SidekiqWatcher {
  #view: WorkerView = NO_WORKER_SEEN;
  #jobs: readonly InFlightJob[] = [];
  #known: readonly string[] = [];
  #lastDiscoveryMono = Number.NEGATIVE_INFINITY;
  #childStartedEpochS = 0;
  #draining = false;
  #cancelPoll: Cancel = () => {};
  #polling: Promise<void> | undefined;
  #stopped = false;
  readonly #warnings: ThrottledWarnings;
  readonly #listeners: ViewListener[] = [];

  constructor(
    private readonly source: SidekiqSource,
    private readonly options: WatcherOptions,
    /** The supervised child, undefined before it starts and after it exits. */
    private readonly childPid: () => number | undefined,
    private readonly clock: Clock,
    log: Logger,
    private readonly supervisedPids: SupervisedPids = processTree,
  ) {
    this.#warnings = new ThrottledWarnings(log, WARNING_INTERVAL_MS, clock);
  }

  get view(): WorkerView {
    return this.#view;
  }

  /** The jobs the supervised processes were running at the last read. */
  get jobs(): readonly InFlightJob[] {
    return this.#jobs;
  }

  /** Called after each read, in the order they were added. */
  onView(listener: ViewListener): void {
    this.#listeners.push(listener);
  }

  /** Called as each child starts: the processes of an earlier one are ghosts from now on. */
  start(): void {
    // A worker started again after a restart is watched at the running pace, not the draining one.
    this.#draining = false;
    this.#childStartedEpochS = this.clock.epochMs() / 1000;
    this.#schedule(0);
  }

  /** Polls at the draining pace from now on, the first time at once. */
  draining(): void {
    this.#draining = true;
    this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    this.#cancelPoll();
  }

  /** Warnings about Sidekiq's data, from any read of it: one line per key at most every 10 minutes, with a count. */
  warn(warnings: readonly string[]): void {
    this.#warnings.warnGrouped(warnings, warningKind);
  }

  /** Reads now, or joins the read under way; never rejects. */
  poll(): Promise<void> {
    this.#polling ??= this.#read().finally(() => (this.#polling = undefined));
    return this.#polling;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    this.#cancelPoll();
    this.#cancelPoll = this.clock.schedule(delayMs, () => {
      void this.poll().then(() => this.#schedule(this.#nextPollMs()));
    });
  }

  #nextPollMs(): number {
    if (this.#draining) return DRAINING_POLL_MS;
    return this.options.expectSidekiq && this.#view.lastBeatEpochS === undefined ? BOOTING_POLL_MS : RUNNING_POLL_MS;
  }

  async #read(): Promise<void> {
    const root = this.childPid();
    if (root === undefined) return;
    if (!this.source.ready()) {
      this.#publish({ ...this.#view, redisAnswered: false }, this.#jobs);
      return;
    }
    try {
      const snapshot = await this.#snapshot();
      this.source.succeeded();
      this.warn(snapshot.warnings);
      const nowEpochS = this.clock.epochMs() / 1000;
      const supervised = {
        hostname: this.options.hostname,
        pids: this.supervisedPids(root),
        nowEpochS,
        childStartedEpochS: this.#childStartedEpochS,
      };
      const ours = supervisedProcesses(snapshot.processes, supervised);
      this.#known = ours.map((process) => process.identity);
      const identities = new Set(this.#known);
      const jobs = snapshot.jobs.filter((job) => identities.has(job.identity));
      this.#publish(viewOf(ours, jobs.length, this.#view), jobs);
    } catch (error) {
      this.source.failed(error);
      this.#publish({ ...this.#view, redisAnswered: false }, this.#jobs);
    }
  }

  /** Lists `processes` when no identity is known or it is time to look for new ones; else reads the known ones. */
  async #snapshot(): Promise<SidekiqSnapshot> {
    const now = this.clock.now();
    if (this.#known.length > 0 && now - this.#lastDiscoveryMono < DISCOVER_EVERY_MS) {
      const known = await this.source.readKnown(this.#known);
      const nowEpochS = this.clock.epochMs() / 1000;
      if (
        known.processes.length === this.#known.length &&
        known.processes.every((process) => isAlive(process, nowEpochS))
      )
        return known;
    }
    this.#lastDiscoveryMono = now;
    return this.source.discover(this.options.hostname);
  }

  #publish(view: WorkerView, jobs: readonly InFlightJob[]): void {
    const previous = this.#view;
    this.#view = view;
    this.#jobs = jobs;
    for (const listener of this.#listeners) listener(view, previous);
  }
}

/** What a warning about Sidekiq's data is about: the key or identity it names in quotes, else the warning. */
function warningKind(warning: string): string {
  return /"((?:[^"\\]|\\.)*)"/.exec(warning)?.[1] ?? warning;
}

function viewOf(processes: readonly SidekiqProcess[], jobsInFlight: number, previous: WorkerView): WorkerView {
  const newestBeat = Math.max(previous.lastBeatEpochS ?? 0, ...processes.map((process) => process.beatEpochS));
  return {
    processes: processes.map(({ identity, pid, busy, quiet, beatEpochS, version }) => ({
      identity,
      pid,
      busy,
      quiet,
      beatEpochS,
      ...(version === undefined ? {} : { version }),
    })),
    jobsInFlight,
    lastBeatEpochS: newestBeat > 0 ? newestBeat : undefined,
    redisAnswered: true,
  };
}
