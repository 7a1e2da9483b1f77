// The kernel's OOM killer, at a container's memory limit or the host's, ends the process with the
// highest badness: its memory plus oom_score_adj thousandths of the memory it may use. As PID 1,
// drain-init's end would take the container with it, with no log and no recovery of the worker's jobs,
// so it lowers its own score. Each worker is started with the score drain-init was given, so the
// platform's choice (the kubelet's QoS scores) still applies to it. Lowering needs CAP_SYS_RESOURCE;
// raising the score around a spawn does not, nor lowering it again to a value held before.
import { readFileSync, writeFileSync } from 'node:fs';
import type { Logger } from '../log/logger.js';

/** The kubelet's own: the last process to go, yet not unkillable (-1000) should drain-init itself run away. */
export const PROTECTED_OOM_SCORE = -999;

export interface OomScoreFile {
  read(): string;
  write(score: number): void;
}

export const OWN_OOM_SCORE: OomScoreFile = {
  read: () => readFileSync('/proc/self/oom_score_adj', 'utf8'),
  write: (score) => writeFileSync('/proc/self/oom_score_adj', String(score)),
};

export interface OomProtection {
  /** The score drain-init was started with, which each worker gets. */
  readonly inherited: number;
  /** Runs `spawn` (a synchronous fork) while drain-init holds the inherited score, so the worker inherits that. */
  spawning<T>(spawn: () => T): T;
}

/** Lowers drain-init's score; undefined, logged at debug, where it cannot or need not. */
export function protectFromOomKiller(file: OomScoreFile, log: Logger): OomProtection | undefined {
  let inherited: number;
  try {
    inherited = parseOomScore(file.read());
    if (inherited <= PROTECTED_OOM_SCORE) return undefined;
    file.write(PROTECTED_OOM_SCORE);
  } catch (error) {
    log.debug(
      { err: (error as Error).message },
      'oom_score_adj not lowered (that needs CAP_SYS_RESOURCE): the OOM killer weighs drain-init by its size alone',
    );
    return undefined;
  }
  log.debug(
    { inherited, oomScoreAdj: PROTECTED_OOM_SCORE },
    "lowered drain-init's oom_score_adj: the OOM killer takes the worker first",
  );
  const set = (score: number): void => {
    try {
      file.write(score);
    } catch (error) {
      log.warn({ score, err: (error as Error).message }, "could not set drain-init's oom_score_adj");
    }
  };
  return {
    inherited,
    spawning(spawn) {
      set(inherited);
      try {
        return spawn();
      } finally {
        set(PROTECTED_OOM_SCORE);
      }
    },
  };
}

/** /proc/<pid>/oom_score_adj: a whole number from -1000 to 1000. */
export function parseOomScore(text: string): number {
  const trimmed = text.trim();
  const score = Number(trimmed);
  if (!/^-?\d+$/.test(trimmed) || score < -1000 || score > 1000)
    throw new Error(`oom_score_adj ${JSON.stringify(trimmed)} is not a score`);
  return score;
}
