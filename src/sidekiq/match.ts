// Which Sidekiq processes in Redis are the ones drain-init supervises. Membership of `processes`
// proves nothing (a SIGKILLed process stays a member, and its hash lives on for 60 s), so a
// process is ours only when its host, its pid and a fresh heartbeat all say so.
import type { SidekiqProcess } from './parse.js';

/** A heartbeat older than this many beat intervals means the process is gone. */
const MISSED_BEATS = 3;
const BEAT_INTERVAL_BEFORE_7_S = 5;
const BEAT_INTERVAL_FROM_7_S = 10;

export interface Supervised {
  /** The hostname Sidekiq writes for a process of this container: see sidekiqHostname. */
  readonly hostname: string;
  /** Every pid in the supervised process tree. */
  readonly pids: ReadonlySet<number>;
  /**
   * Now in epoch seconds, by the clock `beat` was written with: Sidekiq's own `Time.now`, which for
   * processes of this host is the local clock.
   */
  readonly nowEpochS: number;
  /**
   * When the supervised child started, epoch seconds by the same clock. A process whose last beat is
   * older is a ghost of an earlier worker, however fresh: a restarted container's worker often gets
   * the pid of the one before it, whose hash outlives it by 60 s.
   */
  readonly childStartedEpochS: number;
}

/** `sleep 5` up to 6.x, `BEAT_PAUSE = 10` from 7.0; `version` is written from 7.0.2, so without one assume the longer. */
export function beatIntervalS(version: string | undefined): number {
  const major = Number.parseInt(version ?? '', 10);
  return major < 7 ? BEAT_INTERVAL_BEFORE_7_S : BEAT_INTERVAL_FROM_7_S;
}

/** The last heartbeat is recent enough for the process to be alive. */
export function isAlive(process: SidekiqProcess, nowEpochS: number): boolean {
  return nowEpochS - process.beatEpochS < MISSED_BEATS * beatIntervalS(process.version);
}

/** The live processes that run on this host inside the supervised tree and have beaten since the child started. */
export function supervisedProcesses(processes: readonly SidekiqProcess[], supervised: Supervised): SidekiqProcess[] {
  return processes.filter(
    (process) =>
      process.hostname === supervised.hostname &&
      supervised.pids.has(process.pid) &&
      process.beatEpochS >= supervised.childStartedEpochS &&
      isAlive(process, supervised.nowEpochS),
  );
}

/** Sidekiq's `ENV["DYNO"] || Socket.gethostname`, from the environment it was started with; Ruby takes an empty DYNO too. */
export function sidekiqHostname(env: Readonly<Record<string, string | undefined>>, osHostname: string): string {
  return env.DYNO ?? osHostname;
}
