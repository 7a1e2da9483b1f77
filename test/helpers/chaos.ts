// The chaos run of the "no job lost" test and benchmark: a queue of SleepJobs, the worker SIGKILLed at
// random moments several times under an init that is started again after each exit (as a platform
// restarts a container), then left to finish. It tells what became of every job and, for each job a
// kill caught in flight, whether Sidekiq's last heartbeat had it in the work hash (drain-init can only
// recover what Redis shows) or it had started since. Only erasable TypeScript syntax: the benchmark runs
// this file with Node 24's type stripping.
import { readFileSync } from 'node:fs';
import { childOf, killRun, type Run } from './pid1.ts';
import type { RedisServer } from './redis.ts';
import { enqueue, jidOf, markerRuns, sidekiqProcesses, type EnqueuedJob, type MarkerRun } from './sidekiq.ts';

export interface ChaosPlan {
  readonly jobs: number;
  /** Each job sleeps between these, in seconds, drawn from the seed (0.1 s steps). */
  readonly jobSeconds: readonly [number, number];
  /** A kill comes this long after the worker registered with Sidekiq, drawn from the seed, in ms. */
  readonly killAfterMs: readonly [number, number];
  readonly kills: number;
  /** What each kill SIGKILLs: the worker alone (an OOM kill), or the init too, the whole PID namespace (a container killed whole). */
  readonly victim: 'worker' | 'namespace';
  readonly seed: number;
  /** The whole run must end within this. */
  readonly timeoutMs: number;
}

/** Starts the init as PID 1 of a new PID namespace around the worker; each call is a new container start. */
export type StartInit = () => Run;

export interface KillReport {
  /** The jids the worker was running when it was killed. */
  readonly inFlight: readonly string[];
  /** Of those, the ones in the work hash of its last heartbeat. */
  readonly seen: readonly string[];
  /** How the init ended after the kill. */
  readonly initExit: string;
}

export interface ChaosReport {
  readonly jobs: readonly EnqueuedJob[];
  readonly kills: readonly KillReport[];
  /** How many times each job ran to its end. */
  readonly completions: ReadonlyMap<string, number>;
  /** Jobs that never ran to their end. */
  readonly lost: readonly string[];
  /** Lost jobs that were in the last heartbeat of the worker that was running them when it was killed. */
  readonly lostSeen: readonly string[];
  /** Lost jobs that had started after that heartbeat: Redis never showed them running. */
  readonly lostUnseen: readonly string[];
  /** Lost jobs that no kill caught in flight. */
  readonly lostOtherwise: readonly string[];
  /** Completions beyond the first. */
  readonly duplicates: number;
  readonly durationMs: number;
  /** Each init's stderr, one per start. */
  readonly initLogs: readonly string[];
}

/** No job runs and none waits for this long: the run is over. */
const SETTLED_MS = 1_000;
const REGISTER_TIMEOUT_MS = 30_000;
const INIT_EXIT_TIMEOUT_MS = 20_000;

/** Enqueues the plan's jobs, runs the worker under the init with the kills, then until every job that can has run. */
export async function runChaos(
  redis: RedisServer,
  markerDir: string,
  plan: ChaosPlan,
  startInit: StartInit,
  progress: (line: string) => void = () => {},
): Promise<ChaosReport> {
  const random = seededRandom(plan.seed);
  const between = ([low, high]: readonly [number, number]): number => low + random() * (high - low);
  const jobs: EnqueuedJob[] = [];
  for (let index = 0; index < plan.jobs; index++) {
    const seconds = Math.round(between(plan.jobSeconds) * 10) / 10;
    jobs.push(await enqueue(redis, { args: [seconds, `chaos-${index}`] }));
  }
  const began = performance.now();
  const deadline = began + plan.timeoutMs;
  const kills: KillReport[] = [];
  const initLogs: string[] = [];
  for (let kill = 0; kill < plan.kills; kill++) {
    const run = startInit();
    try {
      const worker = await registeredWorker(run, redis, deadline);
      await sleep(between(plan.killAfterMs));
      process.kill(plan.victim === 'worker' ? worker.hostPid : await run.pid(), 'SIGKILL');
      const initExit = await exitOf(run);
      const inFlight = inFlightJobs(markerDir, worker);
      const inWorkHash = await jidsInWorkHash(redis, worker.identity);
      const seen = inFlight.filter((jid) => inWorkHash.has(jid));
      kills.push({ inFlight, seen, initExit });
      progress(
        `kill ${kill + 1}: ${inFlight.length} job(s) in flight, ${seen.length} in the last heartbeat; the init ${initExit}`,
      );
    } finally {
      initLogs.push(await stopped(run));
    }
  }
  const last = startInit();
  try {
    const worker = await registeredWorker(last, redis, deadline);
    await settled(redis, markerDir, worker, jobs.length, deadline);
  } finally {
    initLogs.push(await stopped(last));
  }
  return report(jobs, kills, markerRuns(markerDir, 'done'), performance.now() - began, initLogs);
}

/** What became of each job, from the kills and the done markers. */
function report(
  jobs: readonly EnqueuedJob[],
  kills: readonly KillReport[],
  done: ReadonlyMap<string, readonly MarkerRun[]>,
  durationMs: number,
  initLogs: readonly string[],
): ChaosReport {
  const completions = new Map(jobs.map((job) => [job.jid, done.get(job.jid)?.length ?? 0]));
  const lost = jobs.map((job) => job.jid).filter((jid) => completions.get(jid) === 0);
  const lastKillOf = (jid: string): KillReport | undefined => kills.findLast((kill) => kill.inFlight.includes(jid));
  const lostSeen = lost.filter((jid) => lastKillOf(jid)?.seen.includes(jid) === true);
  const lostUnseen = lost.filter((jid) => lastKillOf(jid)?.seen.includes(jid) === false);
  const lostOtherwise = lost.filter((jid) => lastKillOf(jid) === undefined);
  const duplicates = [...completions.values()].reduce((sum, count) => sum + Math.max(0, count - 1), 0);
  return { jobs, kills, completions, lost, lostSeen, lostUnseen, lostOtherwise, duplicates, durationMs, initLogs };
}

/** One line of figures for logs and test output. */
export function summary(result: ChaosReport): string {
  const caught = result.kills.reduce((sum, kill) => sum + kill.inFlight.length, 0);
  const seen = result.kills.reduce((sum, kill) => sum + kill.seen.length, 0);
  return (
    `${result.jobs.length} jobs, ${result.kills.length} kills catching ${caught} jobs in flight (${seen} in the worker's last heartbeat), ` +
    `${result.jobs.length - result.lost.length} finished, ${result.lost.length} lost (${result.lostSeen.length} seen, ` +
    `${result.lostUnseen.length} started after the last heartbeat, ${result.lostOtherwise.length} otherwise), ` +
    `${result.duplicates} duplicate runs, ${(result.durationMs / 1000).toFixed(1)} s`
  );
}

interface Worker {
  /** The Sidekiq process as the host numbers it (to kill it). */
  readonly hostPid: number;
  /** As its own PID namespace numbers it (Sidekiq's identity and the job markers use that). */
  readonly pid: number;
  readonly identity: string;
  /** Epoch seconds: markers written by this worker are not older. */
  readonly startedAfter: number;
}

/** The init's child, once it has registered with Sidekiq. */
async function registeredWorker(run: Run, redis: RedisServer, deadline: number): Promise<Worker> {
  const startedAfter = Date.now() / 1000;
  const initPid = await run.pid();
  const until = Math.min(deadline, performance.now() + REGISTER_TIMEOUT_MS);
  for (;;) {
    const hostPid = childOf(initPid);
    const pid = hostPid === undefined ? undefined : namespacePid(hostPid);
    if (hostPid !== undefined && pid !== undefined) {
      const registered = (await sidekiqProcesses(redis)).find(
        (process) => process.pid === pid && process.startedAt >= startedAfter,
      );
      if (registered !== undefined) return { hostPid, pid, identity: registered.identity, startedAfter };
    }
    if (performance.now() > until)
      throw new Error(
        `the worker did not register with Sidekiq\n--- init log:\n${run.stderr()}\n--- worker log:\n${run.stdout()}`,
      );
    await sleep(100);
  }
}

/** The last number of NSpid in /proc/<pid>/status: the pid inside the innermost PID namespace. */
function namespacePid(hostPid: number): number | undefined {
  try {
    const line = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${hostPid}/status`, 'utf8'))?.[1];
    return line === undefined ? undefined : Number(line.trim().split(/\s+/).at(-1));
  } catch {
    return undefined;
  }
}

/** The jids of `<identity>:workers`: what the dead process's last heartbeat wrote (the hash outlives it by 60 s). */
async function jidsInWorkHash(redis: RedisServer, identity: string): Promise<Set<string>> {
  const values = await redis.call('HVALS', `${identity}:workers`);
  const entries = Array.isArray(values) ? values.map(String) : [];
  return new Set(entries.map((entry) => jidOf((JSON.parse(entry) as { payload: string }).payload)));
}

/** Jobs whose latest start is the worker's and that have not finished since. */
function inFlightJobs(markerDir: string, worker: Worker): string[] {
  const done = markerRuns(markerDir, 'done');
  const inFlight: string[] = [];
  for (const [jid, runs] of markerRuns(markerDir, 'started')) {
    const latest = runs.reduce((newest, run) => (run.at > newest.at ? run : newest));
    if (latest.pid !== worker.pid || latest.at < worker.startedAfter) continue;
    if (!(done.get(jid) ?? []).some((run) => run.at >= latest.at)) inFlight.push(jid);
  }
  return inFlight.sort();
}

/** Until every job has run, or none waits in the queue and the worker runs none (the rest are lost). */
async function settled(
  redis: RedisServer,
  markerDir: string,
  worker: Worker,
  jobCount: number,
  deadline: number,
): Promise<void> {
  let idleSince: number | undefined;
  for (;;) {
    const finished = markerRuns(markerDir, 'done').size;
    const idle =
      finished === jobCount ||
      (Number(await redis.call('LLEN', 'queue:default')) === 0 && inFlightJobs(markerDir, worker).length === 0);
    idleSince = idle ? (idleSince ?? performance.now()) : undefined;
    if (finished === jobCount || (idleSince !== undefined && performance.now() - idleSince >= SETTLED_MS)) return;
    if (performance.now() > deadline)
      throw new Error(`the chaos run did not settle in time: ${finished} of ${jobCount} jobs finished`);
    await sleep(250);
  }
}

/** How the init ended; one still running after INIT_EXIT_TIMEOUT_MS is SIGKILLed. */
async function exitOf(run: Run): Promise<string> {
  const timer = setTimeout(() => void killRun(run), INIT_EXIT_TIMEOUT_MS);
  const { code, signal } = await run.done;
  clearTimeout(timer);
  return signal === null ? `exited ${code}` : `was killed by ${signal}`;
}

/** Stops a run that still goes (SIGTERM to the init, as a platform's stop) and returns its stderr. */
async function stopped(run: Run): Promise<string> {
  if (run.process.exitCode === null && run.process.signalCode === null) {
    process.kill(await run.pid(), 'SIGTERM');
    await exitOf(run);
  }
  return run.stderr();
}

/** mulberry32: the same jobs and kill moments for the same seed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
