// Fetches of several worker connections served by one run of the fetch script, on drain-init's own Redis
// connection: a fetch goes at once when no run is on its way, and those that arrive meanwhile go together in
// the next. An idle worker's fetch waits for nothing; under load one round trip to Redis serves a job to
// each thread that asked during the last. The run itself is given: no I/O here.
import { fetchCall, parseFetchReply, type FetchRequest, type FetchResult, type FetchTarget } from './fetch.js';

/** Fetches in one run at most: the script's keys and arguments grow with them. */
export const MAX_BATCH = 64;

/** Runs the fetch script with these keys and arguments; rejects when its outcome is not known. */
export type RunFetchScript = (keys: readonly string[], args: readonly string[]) => Promise<unknown>;

interface Waiting {
  readonly target: FetchTarget;
  readonly request: FetchRequest;
  readonly resolve: (result: FetchResult) => void;
  readonly reject: (error: unknown) => void;
}

export class FetchBatches {
  readonly #run: RunFetchScript;
  #waiting: Waiting[] = [];
  #running = false;

  constructor(run: RunFetchScript) {
    this.#run = run;
  }

  /**
   * What became of this fetch. Rejects with the run's error: an error reply (nothing was taken unless the
   * script failed half-way), or a lost connection (the fetch may have taken a job: put it back).
   */
  fetch(target: FetchTarget, request: FetchRequest): Promise<FetchResult> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ target, request, resolve, reject });
      if (!this.#running) void this.#runAll();
    });
  }

  async #runAll(): Promise<void> {
    this.#running = true;
    while (this.#waiting.length > 0) {
      const batch = this.#nextBatch();
      const requests = batch.map((waiting) => waiting.request);
      const { keys, args } = fetchCall(batch[0]?.target as FetchTarget, requests);
      try {
        const results = parseFetchReply(await this.#run(keys, args), batch.length);
        batch.forEach((waiting, index) => waiting.resolve(results[index] as FetchResult));
      } catch (error) {
        for (const waiting of batch) waiting.reject(error);
      }
    }
    this.#running = false;
  }

  /** The first waiting fetches of one target, in order, up to MAX_BATCH. */
  #nextBatch(): Waiting[] {
    const target = this.#waiting[0]?.target;
    const batch: Waiting[] = [];
    const rest: Waiting[] = [];
    for (const waiting of this.#waiting) {
      if (waiting.target === target && batch.length < MAX_BATCH) batch.push(waiting);
      else rest.push(waiting);
    }
    this.#waiting = rest;
    return batch;
  }
}
