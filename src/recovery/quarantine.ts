// Which held job goes back next. A worker's death holds the jobs one death short of the Dead set (the
// requeue script marks them in the record) instead of requeueing them together; they go back one at a time,
// the next only once the one before has finished, died again or was not fetched here in time. A crash loop
// then catches one suspect per death: the job that kills its worker reaches the Dead set alone, and the jobs
// that only ran beside it finish. No I/O; the guard releases what this names.

/** A released job that this instance's worker has not fetched by then was taken elsewhere (another pod). */
export const UNFETCHED_WAIT_MS = 30_000;

interface Released {
  readonly jid: string;
  readonly at: number;
  fetched: boolean;
}

export class Quarantine {
  /** In the order they were held: Set keeps insertion order. */
  #held = new Set<string>();
  #out: Released | undefined;

  get size(): number {
    return this.#held.size;
  }

  /** A recovery held this job (again: a released job that died once more before its last chance). */
  hold(jid: string): void {
    this.settled(jid);
    this.#held.add(jid);
  }

  /** The released job is done with: finished, buried, or requeued by a recovery. */
  settled(jid: string): void {
    if (this.#out?.jid === jid) this.#out = undefined;
  }

  /** This instance's worker fetched the job: from now on only its end frees the next one. */
  fetched(jid: string): void {
    if (this.#out?.jid === jid) this.#out.fetched = true;
  }

  /** The job to release now, taken from the held ones; undefined while the one released before is out. */
  next(nowMs: number): string | undefined {
    const out = this.#out;
    if (out !== undefined && (out.fetched || nowMs - out.at < UNFETCHED_WAIT_MS)) return undefined;
    const [jid] = this.#held;
    if (jid === undefined) return undefined;
    this.#held.delete(jid);
    this.#out = { jid, at: nowMs, fetched: false };
    return jid;
  }

  /** Redis did not take the release: the job is held again, last, and does not count as out. */
  unreleased(jid: string): void {
    this.settled(jid);
    this.#held.add(jid);
  }

  /** Every held job, for drain-init's end: they all go back now. */
  takeAll(): string[] {
    const jids = [...this.#held];
    this.#held = new Set();
    return jids;
  }
}
