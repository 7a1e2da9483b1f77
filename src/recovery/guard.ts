// No job lost: keeps the job record a mirror of what the worker runs, recovers the record when the worker
// dies, and recovers the records of dead peers. The record of an earlier life of this instance (a
// container restart under the same id) is recovered first, before mirroring overwrites it.
import { within, type Cancel } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import type { RedisConnection } from '../redis/connection.js';
import type { InFlightJob } from '../sidekiq/parse.js';
import { readIdentities } from '../sidekiq/reader.js';
import type { WorkerView } from '../sidekiq/view.js';
import type { SidekiqWatcher } from '../sidekiq/watcher.js';
import type { WorkerDeath } from './death.js';
import { recoveryKeys } from './keys.js';
import { JobMirror } from './mirror.js';
import { recoverDeadPeers, recoverRecord, type RecoveryResult, type RecoverySettings } from './recover.js';

/** How often dead peers are looked for, and a failed recovery of the own record is tried again. */
export const PEER_SCAN_EVERY_MS = 30_000;
/** While Redis is down at start, the own record's recovery is tried again at this pace. */
const START_RETRY_MS = 1_000;
/** The last look at the work hash before drain-init's SIGKILL may delay it by this much at most. */
const LAST_LOOK_BUDGET_MS = 500;

export interface GuardSettings extends Omit<RecoverySettings, 'localHost'> {
  readonly instanceId: string;
  /** The hostname Sidekiq writes for this host's processes. */
  readonly hostname: string;
  /** Only jobs of these queues are mirrored and recovered; undefined: every queue. */
  readonly queues: ReadonlySet<string> | undefined;
}

export class JobGuard {
  readonly #mirror: JobMirror;
  readonly #recovery: RecoverySettings;
  /** The own record holds jobs of a dead worker that are not recovered yet: mirroring waits (it would overwrite them). */
  #ownPending = true;
  /** Sidekiq Pro's reliable fetch recovers jobs itself. */
  #standingAside = false;
  #recovering: Promise<void> | undefined;
  #lastWrite: Promise<unknown> = Promise.resolve();
  #jobsRecovered = 0;
  #stopScanning: Cancel = () => {};

  constructor(
    private readonly connection: RedisConnection,
    private readonly watcher: SidekiqWatcher,
    private readonly settings: GuardSettings,
    private readonly log: Logger,
  ) {
    this.#mirror = new JobMirror(
      connection,
      recoveryKeys(settings.prefix, settings.instanceId),
      settings.instanceId,
      settings.queues,
    );
    const liveIdentities = (): ReadonlySet<string> =>
      new Set(watcher.view.processes.map((process) => process.identity));
    this.#recovery = {
      prefix: settings.prefix,
      sidekiq: settings.sidekiq,
      clock: settings.clock,
      localHost: () => ({ hostname: settings.hostname, liveIdentities: liveIdentities() }),
    };
    watcher.onView((view) => this.#follow(view, watcher.jobs));
  }

  /** Jobs put back in their queues by this instance: its own worker's and its dead peers'. */
  get jobsRecovered(): number {
    return this.#jobsRecovered;
  }

  start(): void {
    this.#scheduleOwnRecovery(0);
    this.#stopScanning = this.settings.clock.every(PEER_SCAN_EVERY_MS, () => {
      if (this.#ownPending) void this.#recoverOwn();
      void this.#recoverPeers();
    });
  }

  stop(): void {
    this.#stopScanning();
  }

  /** Each read of the worker: the record follows what the supervised processes run. */
  #follow(view: WorkerView, jobs: readonly InFlightJob[]): void {
    if (this.#ownPending || this.#standingAside || !view.redisAnswered) return;
    this.#lastWrite = this.#mirror.update({ identities: view.processes.map((process) => process.identity), jobs });
  }

  /** Just before drain-init's SIGKILL: the quiet worker's work hash is exactly what it still runs. */
  async lastLook(): Promise<void> {
    const looked = this.watcher.poll().then(() => this.#lastWrite);
    await within(this.settings.clock, looked, LAST_LOOK_BUDGET_MS, undefined);
  }

  /** After the worker's exit: its jobs back in their queues if it did not requeue them itself. */
  async workerDied(death: WorkerDeath): Promise<void> {
    if (this.#standingAside) return;
    await this.#lastWrite;
    if (death.recoverJobs) {
      await this.#mirrorLastBeat();
      this.#ownPending = true;
      await this.#recoverOwn();
      if (this.#ownPending) this.#scheduleOwnRecovery(START_RETRY_MS);
    } else if (death.cause === 'clean') {
      await this.#mirror.clear();
    }
  }

  /**
   * The dead worker's work hash outlives it by 60 s and holds its last heartbeat, which may be newer than
   * the last read: one more read of it, so a job Redis showed running is recovered however the polls fell.
   */
  async #mirrorLastBeat(): Promise<void> {
    const identities = this.watcher.view.processes.map((process) => process.identity);
    if (this.#ownPending || identities.length === 0 || this.connection.client.status !== 'ready') return;
    try {
      const lastBeat = await readIdentities(this.connection.client, identities, this.settings.sidekiq);
      await this.#mirror.update({
        identities: lastBeat.processes.map((process) => process.identity),
        jobs: lastBeat.jobs,
      });
    } catch (error) {
      this.connection.commandFailed(error);
    }
  }

  #scheduleOwnRecovery(delayMs: number): void {
    this.settings.clock.schedule(delayMs, () => {
      void this.#recoverOwn().then(() => {
        if (this.#ownPending && !this.#standingAside) this.#scheduleOwnRecovery(START_RETRY_MS);
        else void this.#recoverPeers();
      });
    });
  }

  /** One recovery of the own record at a time; the mirror starts over from what the worker runs now. */
  #recoverOwn(): Promise<void> {
    this.#recovering ??= (async () => {
      if (this.connection.client.status !== 'ready') return;
      const result = await recoverRecord(
        this.connection,
        this.#recovery,
        { instanceId: this.settings.instanceId, onlyIfExpired: false },
        this.log,
      );
      this.#count(result);
      if (result.kind === 'recovered') {
        this.#mirror.forget();
        this.#ownPending = false;
      }
    })().finally(() => (this.#recovering = undefined));
    return this.#recovering;
  }

  async #recoverPeers(): Promise<void> {
    if (this.#standingAside || this.connection.client.status !== 'ready') return;
    for (const result of await recoverDeadPeers(this.connection, this.#recovery, this.settings.instanceId, this.log))
      this.#count(result);
  }

  #count(result: RecoveryResult): void {
    if (result.kind === 'sidekiq-pro') {
      this.#standingAside = true;
      this.stop();
    } else if (result.kind === 'recovered') {
      this.#jobsRecovered += result.jobs.filter((job) => job.outcome === 'requeued').length;
    }
  }
}
