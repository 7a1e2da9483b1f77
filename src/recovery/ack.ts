// Which fetched jobs are still running, from what the worker's heartbeats say: the rule that takes a job
// out of the job record once the worker is done with it. No I/O; the guard feeds it and writes its answers.
//
// A job leaves the record when a heartbeat of the process that fetched it shows it finished: it was seen
// in an earlier beat and is gone from this one, or it is absent from two beats after its fetch (a short job
// that ran between two beats; one beat is not enough, since a beat may have been composed just before the
// worker's thread took the job in).

/** A Sidekiq process, as `host:pid`: its identity without the random nonce, known at fetch time from the socket. */
export type ProcessKey = string;

/** Two beats without the job, after its fetch: it ran between them. */
export const BEATS_TO_FINISH_UNSEEN = 2;

interface Tracked {
  seen: boolean;
  missedBeats: number;
}

export class InFlightJobs {
  /** By process, so that a beat, an ended process and the sweep read only what they need, not every job. */
  readonly #byProcess = new Map<ProcessKey, Map<string, Tracked>>();
  readonly #processOf = new Map<string, ProcessKey>();

  /** Jobs taken from their queue and not yet known to be finished. */
  get size(): number {
    return this.#processOf.size;
  }

  /** The processes that hold jobs. */
  processes(): ProcessKey[] {
    return [...this.#byProcess.keys()];
  }

  /** A job left its queue for `process` (again, if a retry of it was still tracked: only this fetch counts). */
  fetched(jid: string, process: ProcessKey): void {
    const before = this.#processOf.get(jid);
    if (before !== undefined) this.#forget(jid, before);
    this.#processOf.set(jid, process);
    const jobs = this.#byProcess.get(process) ?? new Map<string, Tracked>();
    this.#byProcess.set(process, jobs.set(jid, { seen: false, missedBeats: 0 }));
  }

  /** A heartbeat of `process` listing the jobs it runs; returns the jids it shows finished. */
  beat(process: ProcessKey, running: ReadonlySet<string>): string[] {
    const finished: string[] = [];
    for (const [jid, job] of this.#byProcess.get(process) ?? []) {
      if (running.has(jid)) {
        job.seen = true;
        job.missedBeats = 0;
      } else if (job.seen || ++job.missedBeats >= BEATS_TO_FINISH_UNSEEN) {
        finished.push(jid);
        this.#forget(jid, process);
      }
    }
    return finished;
  }

  /** The jids `process` held when it ended; they are forgotten here (the caller requeues or drops them). */
  ended(process: ProcessKey): string[] {
    const jids = [...(this.#byProcess.get(process)?.keys() ?? [])];
    for (const jid of jids) this.#processOf.delete(jid);
    this.#byProcess.delete(process);
    return jids;
  }

  /** Every jid, forgotten: the worker is gone and the record is recovered whole. */
  clear(): string[] {
    const jids = [...this.#processOf.keys()];
    this.#processOf.clear();
    this.#byProcess.clear();
    return jids;
  }

  #forget(jid: string, process: ProcessKey): void {
    this.#processOf.delete(jid);
    const jobs = this.#byProcess.get(process);
    jobs?.delete(jid);
    if (jobs?.size === 0) this.#byProcess.delete(process);
  }
}

/** `host:pid` of a Sidekiq identity `host:pid:nonce`. */
export function processOfIdentity(identity: string): ProcessKey | undefined {
  const match = /^(.*:\d+):[^:]+$/.exec(identity);
  return match?.[1];
}
