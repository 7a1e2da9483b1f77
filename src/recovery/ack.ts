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
  readonly process: ProcessKey;
  seen: boolean;
  missedBeats: number;
}

export class InFlightJobs {
  readonly #jobs = new Map<string, Tracked>();

  /** Jobs taken from their queue and not yet known to be finished. */
  get size(): number {
    return this.#jobs.size;
  }

  countOf(process: ProcessKey): number {
    let count = 0;
    for (const job of this.#jobs.values()) if (job.process === process) count++;
    return count;
  }

  /** The processes that hold jobs. */
  processes(): Set<ProcessKey> {
    return new Set([...this.#jobs.values()].map((job) => job.process));
  }

  /** A job left its queue for `process`. */
  fetched(jid: string, process: ProcessKey): void {
    this.#jobs.set(jid, { process, seen: false, missedBeats: 0 });
  }

  /** A heartbeat of `process` listing the jobs it runs; returns the jids it shows finished. */
  beat(process: ProcessKey, running: ReadonlySet<string>): string[] {
    const finished: string[] = [];
    for (const [jid, job] of this.#jobs) {
      if (job.process !== process) continue;
      if (running.has(jid)) {
        job.seen = true;
        job.missedBeats = 0;
      } else if (job.seen || ++job.missedBeats >= BEATS_TO_FINISH_UNSEEN) {
        finished.push(jid);
        this.#jobs.delete(jid);
      }
    }
    return finished;
  }

  /** The jids `process` held when it ended; they are forgotten here (the caller requeues or drops them). */
  ended(process: ProcessKey): string[] {
    const jids = [...this.#jobs].filter(([, job]) => job.process === process).map(([jid]) => jid);
    for (const jid of jids) this.#jobs.delete(jid);
    return jids;
  }

  /** Every jid, forgotten: the worker is gone and the record is recovered whole. */
  clear(): string[] {
    const jids = [...this.#jobs.keys()];
    this.#jobs.clear();
    return jids;
  }
}

/** `host:pid` of a Sidekiq identity `host:pid:nonce`. */
export function processOfIdentity(identity: string): ProcessKey | undefined {
  const match = /^(.*:\d+):[^:]+$/.exec(identity);
  return match?.[1];
}
