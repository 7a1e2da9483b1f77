/** What the stop sequence needs of the worker. process/ gives it for any worker; sidekiq/ wraps it for a Sidekiq one. */
export interface WorkerControl {
  /** Sends the quiet or the stop signal to where the worker takes it. */
  signal(signal: number): void;
  /** SIGKILL to the worker's whole process group, once whatever must come first is done. */
  kill(): void;
  /**
   * From now on a suspended worker is resumed (--job-control or not), and one suspended now at once: a
   * suspended worker cannot shut down. A worker that runs gets no signal.
   */
  keepRunning(): void;
  /** What is known of the worker; undefined when nothing is (no Redis, or Redis did not answer). */
  report(): WorkerReport | undefined;
  /**
   * Before a stop is planned: a promise when the report must be read afresh first (it resolves within a
   * short wait, fresh or not), undefined when the report can be trusted as it is.
   */
  freshReport?(): Promise<void> | undefined;
}

export interface WorkerReport {
  /** A supervised process is registered in Sidekiq's `processes`: its signal handlers are installed. */
  readonly registered: boolean;
  readonly jobsInFlight: number;
}
