// What drain-init knows of its own Sidekiq worker from Redis: the input of the drain-aware stop,
// the Redis record, the probe endpoint and the job mirror.

/** One supervised Sidekiq process at its last heartbeat. */
export interface WatchedProcess {
  /** `hostname:pid:nonce`. */
  readonly identity: string;
  readonly pid: number;
  readonly busy: number;
  readonly quiet: boolean;
  /** Time of its last heartbeat, epoch seconds by this host's clock. */
  readonly beatEpochS: number;
  readonly version?: string;
}

export interface WorkerView {
  /** The supervised processes with a fresh heartbeat at the last successful read. */
  readonly processes: readonly WatchedProcess[];
  /** Jobs in the work hashes of those processes at the last successful read. */
  readonly jobsInFlight: number;
  /**
   * The newest heartbeat of any supervised process ever seen, epoch seconds; kept when the process
   * is gone, so its age keeps growing. Undefined until the first one is seen.
   */
  readonly lastBeatEpochS: number | undefined;
  /** The last read of Sidekiq's data went through. */
  readonly redisAnswered: boolean;
}

export const NO_WORKER_SEEN: WorkerView = {
  processes: [],
  jobsInFlight: 0,
  lastBeatEpochS: undefined,
  redisAnswered: false,
};

/** Seconds since the newest heartbeat; undefined before the first. */
export function beatAgeS(view: WorkerView, nowEpochS: number): number | undefined {
  return view.lastBeatEpochS === undefined ? undefined : Math.max(0, nowEpochS - view.lastBeatEpochS);
}

/** Every supervised process says it is quiet and runs no job: stopping it now loses nothing. */
export function isDrained(view: WorkerView): boolean {
  return (
    view.processes.length > 0 &&
    view.jobsInFlight === 0 &&
    view.processes.every((process) => process.quiet && process.busy === 0)
  );
}

/** Whether the worker has registered with Sidekiq; undefined when Redis did not answer the last read. */
export function isRegistered(view: WorkerView): boolean | undefined {
  return view.redisAnswered ? view.processes.length > 0 : undefined;
}
