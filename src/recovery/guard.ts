// No job lost. This instance's job record holds each job from the moment it leaves its queue (the Redis
// endpoint's fetch script writes it there) until the worker's heartbeats show it finished (ack.ts). A
// Sidekiq process that does not fetch through the endpoint (its Redis URL set in the app) is mirrored from
// its heartbeats instead, with the window that leaves. When a worker process dies its jobs go back to their
// queues at once, or to Sidekiq's Dead set when they keep killing workers (the ones one death short of it go
// back one at a time: quarantine.ts); dead peers' records are recovered too. The record of an earlier life of this instance (a restart after a kill) is recovered
// first, before anything new is recorded.
import { within, type Cancel, type Clock } from '../lib/clock.js';
import type { Logger } from '../log/logger.js';
import type { CommandUse, RedisConnection } from '../redis/connection.js';
import { classifyRedisError } from '../redis/health.js';
import { LuaScript } from '../redis/lua-script.js';
import type { BeatWrite } from '../sidekiq/beat-writes.js';
import type { SidekiqKeys } from '../sidekiq/keys.js';
import type { InFlightJob } from '../sidekiq/parse.js';
import { readIdentities } from '../sidekiq/reader.js';
import type { WorkerView } from '../sidekiq/view.js';
import type { SidekiqWatcher } from '../sidekiq/watcher.js';
import { InFlightJobs, processOfIdentity, type ProcessKey } from './ack.js';
import type { WorkerDeath } from './death.js';
import { recoveryKeys, type RecoveryKeys } from './keys.js';
import forgetSource from './forget-record.lua';
import { JobMirror } from './mirror.js';
import { Quarantine } from './quarantine.js';
import {
  recoverDeadPeers,
  recoverRecord,
  releaseHeldJob,
  trimJobDeaths,
  type RecoveryResult,
  type RecoverySettings,
} from './recover.js';
import type { PoisonRule } from './requeue.js';

const FORGET_SCRIPT = new LuaScript(forgetSource);

/** What the guard reads of the worker in Sidekiq: the watcher's view, its jobs, and a read on demand. */
export type WorkerReads = Pick<SidekiqWatcher, 'view' | 'jobs' | 'onView' | 'poll' | 'warn'>;

/** How often dead peers are looked for, and a failed recovery of the own record is tried again. */
export const PEER_SCAN_EVERY_MS = 30_000;
/** How often the processes holding jobs are checked for their end, and refused acks written again. */
export const SWEEP_EVERY_MS = 1_000;
/** While Redis is down at start, the own record's recovery is tried again at this pace. */
const START_RETRY_MS = 1_000;
/** The last look at the work hash before drain-init's SIGKILL may delay it by this much at most. */
const LAST_LOOK_BUDGET_MS = 500;

export interface GuardSettings {
  readonly prefix: string;
  readonly sidekiq: SidekiqKeys;
  readonly clock: Clock;
  /** This instance's id, claimed, and the token of this drain-init's ownership of its record. */
  readonly instanceId: string;
  readonly token: string;
  /** The hostname Sidekiq writes for this host's processes. */
  readonly hostname: string;
  /** Only jobs of these queues are mirrored; undefined: every queue. */
  readonly queues: ReadonlySet<string> | undefined;
  readonly poison: PoisonRule;
  /** The endpoint records this instance's fetches: a process that does not fetch through it is mirrored, and said so. */
  readonly endpoint: boolean;
}

/** What the guard reads of the processes it supervises. */
export interface SupervisedProcesses {
  /** The supervised child: its end is workerDied's, with its exit status. */
  readonly childPid: () => number | undefined;
  /** Whether a process runs (a zombie does not). */
  readonly alive: (pid: number) => boolean;
}

export class JobGuard {
  readonly #keys: RecoveryKeys;
  readonly #recovery: RecoverySettings;
  readonly #inFlight = new InFlightJobs();
  readonly #mirror: JobMirror;
  /** Processes whose heartbeats come through the endpoint: the fetch records their jobs. */
  readonly #onEndpoint = new Set<ProcessKey>();
  /** Processes that stopped cleanly (they requeued what they still ran): their jobs are dropped at their end. */
  readonly #stoppedCleanly = new Set<ProcessKey>();
  /** Identities said to fetch outside the endpoint, each said once. */
  readonly #warnedOutside = new Set<string>();
  /** Finished jobs whose removal from the record Redis has not taken yet. */
  readonly #unacked = new Set<string>();
  /** Jobs held in the record after worker deaths, going back to their queues one at a time. */
  readonly #quarantine = new Quarantine();
  #putBackRunning = false;
  /** Where the walk of the deaths hash for counts past the window goes on. */
  #deathsCursor = '0';
  /** Held jobs whose return Redis refused, each said once. */
  readonly #warnedPutBack = new Set<string>();
  /** Nothing is recorded or mirrored while the record holds jobs of a dead worker or an earlier life. */
  #ownPending = true;
  /** Fetches waiting for the record to be free of them. */
  #waiting: (() => void)[] = [];
  /** Sidekiq Pro's reliable fetch recovers jobs itself. */
  #standingAside = false;
  #recovering: Promise<void> = Promise.resolve();
  #lastWrite: Promise<unknown> = Promise.resolve();
  #jobsRecovered = 0;
  #jobsDead = 0;
  #stops: Cancel[] = [];
  readonly #acks: CommandUse;
  readonly #putBacks: CommandUse;

  constructor(
    private readonly connection: RedisConnection,
    private readonly watcher: WorkerReads,
    private readonly supervised: SupervisedProcesses,
    private readonly settings: GuardSettings,
    private readonly log: Logger,
  ) {
    this.#keys = recoveryKeys(settings.prefix, settings.instanceId);
    this.#acks = { kind: 'write', keys: { [this.#keys.jobs]: 'hash', [this.#keys.deaths]: 'hash' } };
    this.#putBacks = { kind: 'write', keys: { [this.#keys.jobs]: 'hash' } };
    this.#mirror = new JobMirror(connection, this.#keys, settings.instanceId, settings.token, settings.queues);
    const liveIdentities = (): ReadonlySet<string> =>
      new Set(watcher.view.processes.map((process) => process.identity));
    this.#recovery = {
      prefix: settings.prefix,
      sidekiq: settings.sidekiq,
      poison: settings.poison,
      clock: settings.clock,
      localHost: () => ({ hostname: settings.hostname, liveIdentities: liveIdentities() }),
      warnSidekiq: (warnings) => watcher.warn(warnings),
    };
    watcher.onView((view) => this.#follow(view, watcher.jobs));
  }

  /** Jobs put back in their queues by this instance: its own workers' and its dead peers'. */
  get jobsRecovered(): number {
    return this.#jobsRecovered;
  }

  /** Jobs held in the record, one worker death short of the Dead set, waiting to go back alone. */
  get jobsHeld(): number {
    return this.#quarantine.size;
  }

  /** Jobs this instance moved to Sidekiq's Dead set. */
  get jobsDead(): number {
    return this.#jobsDead;
  }

  /** The jobs of this instance's workers, as its record holds them: exact from the fetch on. */
  get jobsInFlight(): number {
    return this.#inFlight.size + this.#mirror.size;
  }

  /**
   * Whether a fetch may be recorded now: not while the record still holds jobs of a dead worker or of an
   * earlier life of this instance (their recovery, which takes the whole record, would take the new job too).
   */
  get recording(): boolean {
    return !this.#ownPending || this.#standingAside;
  }

  /** Resolves when a fetch may be recorded (at once when it may now). */
  whenRecording(): Promise<void> {
    if (this.recording) return Promise.resolve();
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  start(): void {
    this.#scheduleOwnRecovery(0);
    const { clock } = this.settings;
    this.#stops = [
      clock.every(PEER_SCAN_EVERY_MS, () => {
        if (this.#ownPending) void this.#recoverOwn();
        void this.#recoverPeers();
        void this.#trimDeaths();
      }),
      clock.every(SWEEP_EVERY_MS, () => this.sweep()),
    ];
  }

  stop(): void {
    for (const stop of this.#stops.splice(0)) stop();
  }

  /** The fetch script took a job from its queue for `process` and recorded it. */
  fetched(jid: string, process: ProcessKey): void {
    this.#inFlight.fetched(jid, process);
    this.#quarantine.fetched(jid);
  }

  /** A heartbeat write of a worker, as the endpoint saw it. */
  beatWrite(write: BeatWrite): void {
    const process = processOfIdentity(write.identity);
    if (process === undefined) return;
    this.#onEndpoint.add(process);
    if (write.kind === 'stopped') this.#stoppedCleanly.add(process);
    else if (write.kind === 'work') this.#ack(this.#inFlight.beat(process, write.jids));
  }

  /** A worker connection to the endpoint closed: a process holding jobs may have ended. */
  connectionClosed(): void {
    this.sweep();
  }

  /**
   * Ends the processes (other than the child) that held jobs and are gone: a Sidekiq process that a shell, a
   * swarm or a forking master ran beside others. Its jobs are dropped when it stopped cleanly, else requeued.
   */
  sweep(): void {
    if (this.#unacked.size > 0) this.#ack([]);
    this.#putBackNext();
    const child = this.supervised.childPid();
    for (const process of this.#inFlight.processes()) {
      const pid = Number(process.slice(process.lastIndexOf(':') + 1));
      if (pid === child || this.supervised.alive(pid)) continue;
      const jids = this.#inFlight.ended(process);
      if (this.#stoppedCleanly.has(process)) this.#ack(jids);
      else void this.#serially(() => this.#recover({ process, cause: `process ${pid} ended` }));
    }
  }

  /** Just before drain-init's SIGKILL: a mirrored worker's work hash is exactly what it still runs. */
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
      this.#ack(this.#endedCleanly());
      this.#inFlight.clear();
      this.#ownPending = true;
      await this.#serially(() => this.#recover({ cause: describeCause(death) }));
      if (this.#ownPending) this.#scheduleOwnRecovery(START_RETRY_MS);
    } else if (death.cause === 'clean') {
      this.#ack(this.#inFlight.clear());
      await this.#mirror.clear();
    }
    await this.#lastWrite;
  }

  /** At drain-init's clean end: out of the index of job records once its record holds no job. Never rejects. */
  async forgetRecord(): Promise<void> {
    await this.#lastWrite;
    await this.#recovering;
    if (this.#standingAside || !this.connection.writable) return;
    const use = { kind: 'write', keys: { [this.#keys.jobs]: 'hash', [this.#keys.index]: 'hash' } } as const;
    try {
      await FORGET_SCRIPT.run(
        this.connection.client,
        [this.#keys.jobs, this.#keys.index],
        [this.settings.instanceId, this.settings.token],
      );
      this.connection.commandSucceeded(use);
    } catch (error) {
      this.connection.commandFailed(error, use);
    }
  }

  /** At drain-init's end: the held jobs go back to their queues together, no worker of this instance runs them. */
  async putBackHeld(): Promise<void> {
    for (const jid of this.#quarantine.takeAll()) await this.#putBack(jid);
  }

  /** The jobs of processes that stopped cleanly: finished or requeued by Sidekiq itself, never requeued again. */
  #endedCleanly(): string[] {
    return [...this.#stoppedCleanly].flatMap((process) => this.#inFlight.ended(process));
  }

  /** Each read of the worker: the record mirrors what the processes outside the endpoint run. */
  #follow(view: WorkerView, jobs: readonly InFlightJob[]): void {
    if (this.#ownPending || this.#standingAside || !view.redisAnswered) return;
    const outside = view.processes.filter((process) => {
      const key = processOfIdentity(process.identity);
      return key === undefined || !this.#onEndpoint.has(key);
    });
    if (this.settings.endpoint) this.#warnOutside(outside.map((process) => process.identity));
    const identities = new Set(outside.map((process) => process.identity));
    this.#lastWrite = this.#mirror.update({
      identities: [...identities],
      jobs: jobs.filter((job) => identities.has(job.identity)),
    });
  }

  #warnOutside(identities: readonly string[]): void {
    for (const identity of identities) {
      if (this.#warnedOutside.has(identity)) continue;
      this.#warnedOutside.add(identity);
      this.log.warn(
        { identity },
        "a Sidekiq process talks to Redis without drain-init's endpoint (its Redis URL is set in the app, not read from REDIS_URL): " +
          'its jobs are mirrored from its heartbeats instead, and one fetched since its last beat is lost if it is killed; ' +
          'let it take its URL from REDIS_URL (or the variable REDIS_PROVIDER names)',
      );
    }
  }

  /**
   * A killed worker's work hash outlives it by 60 s and holds its last heartbeat, which may be newer than
   * the last read: one more read of it, so a job Redis showed running is recovered however the polls fell.
   */
  async #mirrorLastBeat(): Promise<void> {
    const identities = this.watcher.view.processes
      .map((process) => process.identity)
      .filter((identity) => !this.#onEndpoint.has(processOfIdentity(identity) ?? ''));
    if (this.#ownPending || identities.length === 0 || this.connection.client.status !== 'ready') return;
    try {
      const lastBeat = await readIdentities(this.connection.client, identities, this.settings.sidekiq);
      this.connection.commandSucceeded({ kind: 'read' });
      await this.#mirror.update({
        identities: lastBeat.processes.map((process) => process.identity),
        jobs: lastBeat.jobs,
      });
    } catch (error) {
      this.connection.commandFailed(error, { kind: 'read' });
    }
  }

  /** Takes finished jobs (and those left unacked before) out of the record, and their count of deaths with them. */
  #ack(jids: readonly string[]): void {
    for (const jid of jids) {
      this.#unacked.add(jid);
      this.#quarantine.settled(jid);
    }
    if (this.#unacked.size === 0 || !this.connection.writable) return;
    const batch = [...this.#unacked];
    this.#unacked.clear();
    this.#lastWrite = this.connection.client
      .multi()
      .hdel(this.#keys.jobs, ...batch)
      .hdel(this.#keys.deaths, ...batch)
      .exec()
      .then((replies) => {
        for (const [error] of replies ?? [[new Error('transaction aborted')]]) if (error) throw error;
        this.connection.commandSucceeded(this.#acks);
      })
      .catch((error: unknown) => {
        for (const jid of batch) this.#unacked.add(jid);
        this.connection.commandFailed(error, this.#acks);
      });
  }

  #scheduleOwnRecovery(delayMs: number): void {
    this.settings.clock.schedule(delayMs, () => {
      void this.#recoverOwn().then(() => {
        if (this.#ownPending && !this.#standingAside) this.#scheduleOwnRecovery(START_RETRY_MS);
        else void this.#recoverPeers();
      });
    });
  }

  /** The own record, whole: what an earlier life of this instance, or a dead worker, left in it. */
  #recoverOwn(): Promise<void> {
    return this.#serially(() => this.#recover({ cause: 'drain-init was killed with it' }));
  }

  /** One recovery of the own record at a time. */
  #serially(recovery: () => Promise<void>): Promise<void> {
    this.#recovering = this.#recovering.then(recovery, recovery);
    return this.#recovering;
  }

  async #recover(target: { process?: ProcessKey; cause: string }): Promise<void> {
    if (!this.connection.writable) return;
    const result = await recoverRecord(
      this.connection,
      this.#recovery,
      { instanceId: this.settings.instanceId, onlyIfExpired: false, holdSuspects: true, ...target },
      this.log,
    );
    this.#tally(result);
    if (result.kind === 'recovered' && target.process === undefined) {
      this.#mirror.forget();
      this.#ownPending = false;
      this.#release();
    }
  }

  async #recoverPeers(): Promise<void> {
    if (this.#standingAside || !this.connection.writable) return;
    const results = await recoverDeadPeers(this.connection, this.#recovery, this.settings.instanceId, this.log);
    for (const result of results) this.#tally(result);
  }

  async #trimDeaths(): Promise<void> {
    if (this.#standingAside || !this.connection.writable) return;
    const use = { kind: 'write', keys: { [this.#keys.deaths]: 'hash' } } as const;
    try {
      this.#deathsCursor = await trimJobDeaths(this.connection.client, this.#recovery, this.#deathsCursor);
      this.connection.commandSucceeded(use);
    } catch (error) {
      this.connection.commandFailed(error, use);
    }
  }

  #tally(result: RecoveryResult): void {
    if (result.kind === 'sidekiq-pro') {
      this.#standingAside = true;
      this.#release();
      this.stop();
    } else if (result.kind === 'recovered') {
      this.#jobsRecovered += result.jobs.filter((job) => job.outcome === 'requeued').length;
      this.#jobsDead += result.buried.length;
      for (const job of result.jobs) {
        if (job.outcome === 'held') this.#quarantine.hold(job.jid);
        else this.#quarantine.settled(job.jid);
      }
      this.#putBackNext();
    }
  }

  /** The next held job back to its queue, when the one before is done with. */
  #putBackNext(): void {
    if (this.#putBackRunning || this.#standingAside || !this.connection.writable) return;
    const jid = this.#quarantine.next(this.settings.clock.now());
    if (jid === undefined) return;
    this.#putBackRunning = true;
    void this.#putBack(jid).finally(() => {
      this.#putBackRunning = false;
    });
  }

  async #putBack(jid: string): Promise<void> {
    try {
      const queue = await releaseHeldJob(this.connection.client, this.#recovery, this.settings.instanceId, jid);
      this.connection.commandSucceeded(this.#putBacks);
      if (queue === undefined) {
        this.#quarantine.settled(jid);
        return;
      }
      this.#jobsRecovered++;
      this.log.info({ jid, queue, stillHeld: this.#quarantine.size }, 'a held job went back to its queue, alone');
    } catch (error) {
      this.#quarantine.unreleased(jid);
      this.connection.commandFailed(error, this.#putBacks);
      if (this.#warnedPutBack.has(jid) || classifyRedisError(error).kind !== 'other') return;
      this.#warnedPutBack.add(jid);
      this.log.warn(
        { jid, reason: error instanceof Error ? error.message : String(error) },
        'a held job could not go back to its queue: it stays held in the job record and is tried again',
      );
    }
  }

  #release(): void {
    for (const resolve of this.#waiting.splice(0)) resolve();
  }
}

/** For a poison job's error message: `OOM-killed`, `killed by signal SIGKILL` ... */
function describeCause(death: WorkerDeath): string {
  return death.description.replace(/^worker /, '');
}
