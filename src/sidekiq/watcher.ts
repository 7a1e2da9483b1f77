// Polls Sidekiq's data in Redis for the processes drain-init supervises. Listing `processes` costs as
// much as the fleet is large, so it is listed only to find the worker (at start, when a known identity
// goes stale, and every DISCOVER_EVERY_MS for processes started later); in between only the hashes of
// the known identities are read.
import type { Logger } from '../log/logger.js';
import type { RedisConnection } from '../redis/connection.js';
import { isAlive, supervisedProcesses } from './match.js';
import type { InFlightJob, SidekiqProcess, SidekiqSnapshot } from './parse.js';
import { processTree } from './process-tree.js';
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
const DISCOVER_EVERY_MS = 30_000;
/** A broken key is reported once, not at every poll; the memory of what was reported is bounded. */
const MAX_REMEMBERED_WARNINGS = 100;

export interface WatcherOptions {
  /** The hostname Sidekiq writes for processes of this container (sidekiqHostname). */
  readonly hostname: string;
  readonly namespace: string | undefined;
  /** The command line says Sidekiq: poll at the booting pace until it registers. */
  readonly expectSidekiq: boolean;
}

export type ViewListener = (view: WorkerView, previous: WorkerView) => void;

export class SidekiqWatcher {
  #view: WorkerView = NO_WORKER_SEEN;
  #jobs: readonly InFlightJob[] = [];
  #known: readonly string[] = [];
  #lastDiscoveryMono = Number.NEGATIVE_INFINITY;
  #childStartedEpochS = 0;
  #draining = false;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #stopped = false;
  readonly #warned = new Set<string>();

  constructor(
    private readonly connection: RedisConnection,
    private readonly options: WatcherOptions,
    /** The supervised child, undefined before it starts and after it exits. */
    private readonly childPid: () => number | undefined,
    private readonly log: Logger,
    private readonly onView: ViewListener,
  ) {}

  get view(): WorkerView {
    return this.#view;
  }

  /** The jobs the supervised processes were running at the last read. */
  get jobs(): readonly InFlightJob[] {
    return this.#jobs;
  }

  /** Called as each child starts: the processes of an earlier one are ghosts from now on. */
  start(): void {
    this.#childStartedEpochS = Date.now() / 1000;
    this.#schedule(0);
  }

  /** Polls at the draining pace from now on, the first time at once. */
  draining(): void {
    this.#draining = true;
    this.#schedule(0);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** Reads now, or joins the read under way; never rejects. */
  poll(): Promise<void> {
    this.#polling ??= this.#read().finally(() => (this.#polling = undefined));
    return this.#polling;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      void this.poll().then(() => this.#schedule(this.#nextPollMs()));
    }, delayMs).unref();
  }

  #nextPollMs(): number {
    if (this.#draining) return DRAINING_POLL_MS;
    return this.options.expectSidekiq && this.#view.lastBeatEpochS === undefined ? BOOTING_POLL_MS : RUNNING_POLL_MS;
  }

  async #read(): Promise<void> {
    const root = this.childPid();
    if (root === undefined) return;
    if (this.connection.client.status !== 'ready') {
      this.#publish({ ...this.#view, redisAnswered: false }, this.#jobs);
      return;
    }
    try {
      const snapshot = await this.#snapshot();
      this.connection.commandSucceeded();
      this.#warnOnce(snapshot.warnings);
      const nowEpochS = Date.now() / 1000;
      const supervised = {
        hostname: this.options.hostname,
        pids: processTree(root),
        nowEpochS,
        childStartedEpochS: this.#childStartedEpochS,
      };
      const ours = supervisedProcesses(snapshot.processes, supervised);
      this.#known = ours.map((process) => process.identity);
      const identities = new Set(this.#known);
      const jobs = snapshot.jobs.filter((job) => identities.has(job.identity));
      this.#publish(viewOf(ours, jobs.length, this.#view), jobs);
    } catch (error) {
      this.connection.commandFailed(error);
      this.#publish({ ...this.#view, redisAnswered: false }, this.#jobs);
    }
  }

  /** Lists `processes` when no identity is known or it is time to look for new ones; else reads the known ones. */
  async #snapshot(): Promise<SidekiqSnapshot> {
    const { client } = this.connection;
    const now = performance.now();
    if (this.#known.length > 0 && now - this.#lastDiscoveryMono < DISCOVER_EVERY_MS) {
      const known = await readIdentities(client, this.#known, this.options.namespace);
      const nowEpochS = Date.now() / 1000;
      if (
        known.processes.length === this.#known.length &&
        known.processes.every((process) => isAlive(process, nowEpochS))
      )
        return known;
    }
    this.#lastDiscoveryMono = now;
    return readSidekiq(client, {
      namespace: this.options.namespace,
      hostname: this.options.hostname,
      onlyHostname: true,
    });
  }

  #publish(view: WorkerView, jobs: readonly InFlightJob[]): void {
    const previous = this.#view;
    this.#view = view;
    this.#jobs = jobs;
    this.onView(view, previous);
  }

  #warnOnce(warnings: readonly string[]): void {
    for (const warning of warnings) {
      if (this.#warned.has(warning)) continue;
      if (this.#warned.size < MAX_REMEMBERED_WARNINGS) this.#warned.add(warning);
      this.log.warn(warning);
    }
  }
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
