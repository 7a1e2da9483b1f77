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

/** A job a beat has shown running; any other state is the number of beats that missed it since its fetch. */
const SEEN = -1;

export class InFlightJobs {
  /**
   * By process, so that a beat, an ended process and the sweep read only what they need, not every job; each
   * job's state a number, not an object: tens of thousands of short jobs wait for their second beat at once.
   */
  readonly #byProcess = new Map<ProcessKey, Map<string, number>>();

  /** Jobs taken from their queue and not yet known to be finished. */
  get size(): number {
    let size = 0;
    for (const jobs of this.#byProcess.values()) size += jobs.size;
    return size;
  }

  /** The processes that hold jobs. */
  processes(): ProcessKey[] {
    return [...this.#byProcess.keys()];
  }

  /** A job left its queue for `process` (again, if a retry of it was still tracked: only this fetch counts). */
  fetched(jid: string, process: ProcessKey): void {
    // A handful of processes at most: each is looked at.
    for (const [other, jobs] of this.#byProcess) {
      if (jobs.delete(jid) && jobs.size === 0 && other !== process) this.#byProcess.delete(other);
    }
    const jobs = this.#byProcess.get(process) ?? new Map<string, number>();
    this.#byProcess.set(process, jobs.set(jid, 0));
  }

  /** A heartbeat of `process` listing the jobs it runs; returns the jids it shows finished. */
  beat(process: ProcessKey, running: ReadonlySet<string>): string[] {
    const jobs = this.#byProcess.get(process);
    if (jobs === undefined) return [];
    const finished: string[] = [];
    for (const [jid, state] of jobs) {
      if (running.has(jid)) jobs.set(jid, SEEN);
      else if (state !== SEEN && state + 1 < BEATS_TO_FINISH_UNSEEN) jobs.set(jid, state + 1);
      else {
        finished.push(jid);
        jobs.delete(jid);
      }
    }
    if (jobs.size === 0) this.#byProcess.delete(process);
    return finished;
  }

  /** The jids `process` held when it ended; they are forgotten here (the caller requeues or drops them). */
  ended(process: ProcessKey): string[] {
    const jids = [...(this.#byProcess.get(process)?.keys() ?? [])];
    this.#byProcess.delete(process);
    return jids;
  }

  /** Every jid, forgotten: the worker is gone and the record is recovered whole. */
  clear(): string[] {
    const jids = [...this.#byProcess.values()].flatMap((jobs) => [...jobs.keys()]);
    this.#byProcess.clear();
    return jids;
  }
}

/** `host:pid` of a Sidekiq identity `host:pid:nonce`. */
export function processOfIdentity(identity: string): ProcessKey | undefined {
  const match = /^(.*:\d+):[^:]+$/.exec(identity);
  return match?.[1];
}
