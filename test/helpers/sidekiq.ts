// Helpers around a real Sidekiq 6.4.1 (Debian ruby-sidekiq) running test/fixtures/sidekiq-app/app.rb.
// Only erasable TypeScript syntax and type-only imports of sibling helpers: the demo runs this file with
// Node 24's type stripping.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect } from 'vitest';
import { redisTestBed, type RedisServer, type RespValue } from './redis.ts';

/** Absolute path of the sample app (SleepJob). Pass it to `sidekiq -r`; a bare relative path would fail. */
export const SIDEKIQ_APP = fileURLToPath(new URL('../fixtures/sidekiq-app/app.rb', import.meta.url));

/** What the helpers need from a Redis connection; RedisServer from ./redis.ts has it. */
export interface RedisClient {
  call(...args: (string | number)[]): Promise<RespValue>;
  pipeline(commands: (string | number)[][]): Promise<RespValue[]>;
}

export interface SidekiqCommandOptions {
  /** Sidekiq's -t: seconds between TERM and its hard shutdown (requeue). Default 3. */
  readonly timeoutS?: number;
  /** Sidekiq's -c. Default 2. */
  readonly concurrency?: number;
  /** -q entries, e.g. ['critical', 'default'] or ['critical,2']. Default: Sidekiq's own (default). */
  readonly queues?: readonly string[];
  /** The file for -r. Default SIDEKIQ_APP. */
  readonly app?: string;
}

/** argv for a Sidekiq worker: ['sidekiq', '-r', APP, '-t', T, '-c', C, ('-q', Q)...], to run as is or after `drain-init --`. */
export function sidekiqCommand(options: SidekiqCommandOptions = {}): string[] {
  const argv = [
    'sidekiq',
    '-r',
    options.app ?? SIDEKIQ_APP,
    '-t',
    String(options.timeoutS ?? 3),
    '-c',
    String(options.concurrency ?? 2),
  ];
  for (const queue of options.queues ?? []) argv.push('-q', queue);
  return argv;
}

export interface SidekiqEnvOptions {
  readonly redisUrl: string;
  readonly markerDir: string;
  /** Default 'debug', so Sidekiq also logs "Got TERM signal" / "Got TSTP signal". */
  readonly logLevel?: 'debug' | 'info' | 'warn';
  /** Seconds the app takes to load before Sidekiq installs its signal handlers and registers. */
  readonly bootSeconds?: number;
}

/** The environment app.rb needs (merge it over process.env). */
export function sidekiqEnv(options: SidekiqEnvOptions): Record<string, string> {
  return {
    REDIS_URL: options.redisUrl,
    MARKER_DIR: options.markerDir,
    SIDEKIQ_LOG_LEVEL: options.logLevel ?? 'debug',
    BOOT_SECONDS: String(options.bootSeconds ?? 0),
  };
}

/** A fresh temp dir for job markers; remove it with removeMarkerDir. */
export function makeMarkerDir(): string {
  return mkdtempSync(join(tmpdir(), 'drain-init-markers-'));
}

export function removeMarkerDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface EnqueueOptions {
  /** Default 'SleepJob'. */
  readonly jobClass?: string;
  readonly args: readonly unknown[];
  /** Default 'default'. */
  readonly queue?: string;
  /** Default true, as Sidekiq's default_worker_options. */
  readonly retry?: boolean | number;
  /** Default: 24 random hex digits, like SecureRandom.hex(12). */
  readonly jid?: string;
}

export interface EnqueuedJob {
  readonly jid: string;
  readonly queue: string;
  /** The exact string pushed; Sidekiq requeues this same string on a clean shutdown. */
  readonly payload: string;
}

/**
 * Pushes a job the way Sidekiq 6.4.1's client does (Client#atomic_push): one pipeline of
 * SADD queues <queue> and LPUSH queue:<queue> <json>, with the keys in the client's order
 * (retry, queue, args, class, jid, created_at, enqueued_at) and times as float epoch seconds.
 */
export async function enqueue(redis: RedisClient, options: EnqueueOptions): Promise<EnqueuedJob> {
  const job = sidekiqJob(options);
  await redis.pipeline([
    ['SADD', 'queues', job.queue],
    ['LPUSH', `queue:${job.queue}`, job.payload],
  ]);
  return job;
}

/** A job string as Sidekiq 6.4.1's client writes it (see enqueue), not pushed. */
export function sidekiqJob(options: EnqueueOptions): EnqueuedJob {
  const queue = options.queue ?? 'default';
  const jid = options.jid ?? randomBytes(12).toString('hex');
  const createdAt = nowSeconds();
  const enqueuedAt = Math.max(nowSeconds(), createdAt);
  const payload =
    `{"retry":${JSON.stringify(options.retry ?? true)},"queue":${JSON.stringify(queue)},"args":${JSON.stringify(options.args)},` +
    `"class":${JSON.stringify(options.jobClass ?? 'SleepJob')},"jid":${JSON.stringify(jid)},` +
    `"created_at":${rubyFloat(createdAt)},"enqueued_at":${rubyFloat(enqueuedAt)}}`;
  return { jid, queue, payload };
}

/** The raw job strings in queue:<name>, in Redis order: index 0 is the newest LPUSH, the last is fetched next. */
export async function jobsInQueue(redis: RedisClient, queue = 'default'): Promise<string[]> {
  return strings(await redis.call('LRANGE', `queue:${queue}`, 0, -1));
}

/** The jid of a raw job string. */
export function jidOf(payload: string): string {
  const job = JSON.parse(payload) as { jid?: unknown };
  return typeof job.jid === 'string' ? job.jid : '';
}

export interface Markers {
  /** jids with <jid>.started (sorted). */
  readonly started: string[];
  /** jids with <jid>.done: the job ran to its end. */
  readonly done: string[];
  /** jids with <jid>.interrupted: Sidekiq's hard shutdown raised Sidekiq::Shutdown in the job. */
  readonly interrupted: string[];
}

/** The markers SleepJob wrote in `dir`. */
export function markers(dir: string): Markers {
  const found: Markers = { started: [], done: [], interrupted: [] };
  const names = existsSync(dir) ? readdirSync(dir).sort() : [];
  for (const name of names) {
    const match = /^([0-9a-f]+)\.(started|done|interrupted)$/.exec(name);
    if (match?.[1] !== undefined && match[2] !== undefined) found[match[2] as keyof Markers].push(match[1]);
  }
  return found;
}

/** Waits until <jid>.<state> in `dir` holds a whole line (the job opens the file before it writes its line). */
export async function waitForMarker(
  dir: string,
  jid: string,
  state: 'started' | 'done' | 'interrupted',
  timeoutMs = 20_000,
): Promise<void> {
  const file = join(dir, `${jid}.${state}`);
  await poll(
    () => (existsSync(file) && readFileSync(file, 'utf8').includes('\n')) || undefined,
    `${jid}.${state}`,
    timeoutMs,
    50,
  );
}

/** One line of a marker file: one run of the job that reached that state. */
export interface MarkerRun {
  /** The Sidekiq process, as its PID namespace numbers it. */
  readonly pid: number;
  /** Epoch seconds. */
  readonly at: number;
}

/** The runs recorded in each <jid>.<state> file of `dir` (SleepJob appends one JSON line per run), by jid. */
export function markerRuns(dir: string, state: 'started' | 'done' | 'interrupted'): Map<string, MarkerRun[]> {
  const runs = new Map<string, MarkerRun[]>();
  for (const jid of markers(dir)[state]) {
    const lines = readFileSync(join(dir, `${jid}.${state}`), 'utf8')
      .split('\n')
      .filter((line) => line !== '');
    runs.set(
      jid,
      lines.map((line) => {
        const { pid, at } = JSON.parse(line) as MarkerRun;
        return { pid, at };
      }),
    );
  }
  return runs;
}

/** What became of a job: ran to its end, back in its queue (after it started, or never started), in the retry or dead set, or none of these. */
export type JobFate = 'finished' | 'requeued' | 'waiting' | 'retry/dead' | 'lost';

export interface JobOutcome {
  readonly jid: string;
  readonly fate: JobFate;
  /** It had a .started marker. */
  readonly started: boolean;
  /** It had an .interrupted marker (Sidekiq's hard shutdown). */
  readonly interrupted: boolean;
  /** Requeued or waiting: every copy in its queue is the byte-identical string first pushed. */
  readonly identical: boolean;
}

/** Each job's fate, once its worker is gone: from the markers in `markerDir`, queue:<queue>, and the retry and dead sets. */
export async function jobOutcomes(
  redis: RedisClient,
  markerDir: string,
  jobs: readonly EnqueuedJob[],
): Promise<JobOutcome[]> {
  const found = markers(markerDir);
  const queued = new Map<string, string[]>();
  for (const queue of new Set(jobs.map((job) => job.queue))) queued.set(queue, await jobsInQueue(redis, queue));
  const retryOrDead = [
    ...strings(await redis.call('ZRANGE', 'retry', 0, -1)),
    ...strings(await redis.call('ZRANGE', 'dead', 0, -1)),
  ].map(jidOf);
  return jobs.map((job): JobOutcome => {
    const inQueue = (queued.get(job.queue) ?? []).filter((payload) => jidOf(payload) === job.jid);
    const started = found.started.includes(job.jid);
    const fate: JobFate = found.done.includes(job.jid)
      ? 'finished'
      : inQueue.length > 0
        ? started
          ? 'requeued'
          : 'waiting'
        : retryOrDead.includes(job.jid)
          ? 'retry/dead'
          : 'lost';
    return {
      jid: job.jid,
      fate,
      started,
      interrupted: found.interrupted.includes(job.jid),
      identical: inQueue.length > 0 && inQueue.every((payload) => payload === job.payload),
    };
  });
}

export interface SidekiqProcessInfo {
  readonly identity: string;
  readonly hostname: string;
  readonly pid: number;
  readonly busy: number;
  readonly quiet: boolean;
  /** Epoch seconds of the last heartbeat. */
  readonly beat: number;
  /** Epoch seconds of the process's start (its `info`). */
  readonly startedAt: number;
  readonly concurrency: number;
  readonly queues: string[];
}

/**
 * The live processes as Sidekiq registers them: members of `processes` whose identity hash still has
 * `info` (SIGKILLed ghosts stay in the set after their hash expired; they are skipped).
 */
export async function sidekiqProcesses(redis: RedisClient): Promise<SidekiqProcessInfo[]> {
  const identities = strings(await redis.call('SMEMBERS', 'processes')).sort();
  const found: SidekiqProcessInfo[] = [];
  for (const identity of identities) {
    const [info, busy, quiet, beat] = strings(await redis.call('HMGET', identity, 'info', 'busy', 'quiet', 'beat'));
    if (info === undefined || info === '') continue;
    const parsed = JSON.parse(info) as {
      hostname?: string;
      pid?: number;
      started_at?: number;
      concurrency?: number;
      queues?: string[];
    };
    found.push({
      identity,
      hostname: parsed.hostname ?? '',
      pid: parsed.pid ?? -1,
      busy: Number(busy ?? 0),
      quiet: quiet === 'true',
      beat: Number(beat ?? 0),
      startedAt: parsed.started_at ?? 0,
      concurrency: parsed.concurrency ?? 0,
      queues: parsed.queues ?? [],
    });
  }
  return found;
}

export interface WaitOptions {
  readonly timeoutMs?: number;
  /** Only count processes whose info.pid is this pid (as seen inside the worker's PID namespace). */
  readonly pid?: number;
}

/**
 * Polls `processes` and the identity hashes until their `busy` fields add up to at least n.
 * `busy` is written by the heartbeat, every 5 s in 6.x: a job is seen busy up to 5 s after it started
 * (use waitForMarker(dir, jid, 'started') to know at once). Resolves to the processes counted.
 */
export async function waitForSidekiqBusy(
  redis: RedisClient,
  n: number,
  options: WaitOptions = {},
): Promise<SidekiqProcessInfo[]> {
  return pollAsync(
    async () => {
      const live = (await sidekiqProcesses(redis)).filter((p) => options.pid === undefined || p.pid === options.pid);
      return live.reduce((sum, p) => sum + p.busy, 0) >= n ? live : undefined;
    },
    `${n} busy Sidekiq job(s)`,
    options.timeoutMs ?? 15_000,
  );
}

/** Polls until a Sidekiq process has registered (first heartbeat: its signal traps are installed by then). */
export async function waitForSidekiqRegistered(
  redis: RedisClient,
  options: WaitOptions = {},
): Promise<SidekiqProcessInfo> {
  return pollAsync(
    async () => (await sidekiqProcesses(redis)).find((p) => options.pid === undefined || p.pid === options.pid),
    'a registered Sidekiq process',
    options.timeoutMs ?? 15_000,
  );
}

/** Polls until a Sidekiq process reports quiet=true (first heartbeat after TSTP, up to 5 s later). */
export async function waitForSidekiqQuiet(redis: RedisClient, options: WaitOptions = {}): Promise<SidekiqProcessInfo> {
  return pollAsync(
    async () =>
      (await sidekiqProcesses(redis)).find((p) => p.quiet && (options.pid === undefined || p.pid === options.pid)),
    'a quiet Sidekiq process',
    options.timeoutMs ?? 15_000,
  );
}

export interface SidekiqRun {
  readonly process: ChildProcess;
  readonly pid: number;
  /** stdout and stderr interleaved as they came (Sidekiq logs to stdout). */
  log(): string;
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  signal(name: NodeJS.Signals): void;
  /** SIGKILL if still running, then wait for the exit. Safe to call more than once. */
  kill(): Promise<void>;
}

const runningSidekiqs = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Spawns argv (from sidekiqCommand, or drain-init wrapping it) directly, no shell, logs captured. */
export function spawnSidekiq(argv: readonly string[], env: Record<string, string>, cwd?: string): SidekiqRun {
  const [command, ...args] = argv;
  if (command === undefined) throw new Error('empty argv');
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const child of runningSidekiqs) child.kill('SIGKILL');
    });
  }
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd === undefined ? {} : { cwd }),
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  runningSidekiqs.add(child);
  let output = '';
  const append = (chunk: Buffer): void => {
    output += chunk.toString();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (code, signal) => {
      runningSidekiqs.delete(child);
      resolve({ code, signal });
    });
  });
  const pid = child.pid;
  return {
    process: child,
    pid,
    log: () => output,
    waitForLog: (pattern, timeoutMs = 20_000) =>
      poll(
        () => pattern.exec(output)?.[0],
        () => `log line ${String(pattern)}\n--- log so far:\n${output}`,
        timeoutMs,
        50,
      ),
    exited,
    signal: (name) => {
      child.kill(name);
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * ms from the push of a SleepJob of `seconds` to its start (its marker's time, Ruby's clock: the same epoch),
 * with the worker waiting for it.
 */
export async function pickUpMs(redis: RedisClient, markerDir: string, tag: string, seconds = 0): Promise<number> {
  const pushed = nowSeconds();
  const job = await enqueue(redis, { args: [seconds, tag] });
  await waitForMarker(markerDir, job.jid, 'started', 10_000);
  return ((markerRuns(markerDir, 'started').get(job.jid)?.[0]?.at ?? 0) - pushed) * 1000;
}

/** Float epoch seconds with microsecond precision, like Ruby's Time.now.to_f. */
export function nowSeconds(): number {
  const micros = BigInt(Math.round(performance.timeOrigin * 1000)) + BigInt(Math.round(performance.now() * 1000));
  return Number(micros) / 1e6;
}

/** Ruby's Float#to_s for an epoch: shortest round-trip digits, always with a fraction (1795325428.0). */
function rubyFloat(value: number): string {
  return Number.isInteger(value) ? `${value}.0` : String(value);
}

function strings(value: RespValue): string[] {
  if (!Array.isArray(value)) return [];
  return value.map((item) => (item === null ? '' : String(item)));
}

async function poll<T>(
  probe: () => T | undefined,
  what: string | (() => string),
  timeoutMs: number,
  everyMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

export async function pollAsync<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface SidekiqTestBed {
  /** The file's redis-server, flushed before each test. */
  readonly redis: () => RedisServer;
  /** A fresh marker directory for each test. */
  readonly markerDir: () => string;
}

/**
 * Registers the hooks of a real-Sidekiq test file: one redis-server for the file, flushed before each
 * test, and a marker directory per test. Register it first: its afterEach then runs after the file's
 * own, once the processes writing markers are gone.
 */
export function sidekiqTestBed(): SidekiqTestBed {
  const server = redisTestBed();
  let markerDir = '';
  beforeEach(() => {
    markerDir = makeMarkerDir();
  });
  afterEach(() => {
    removeMarkerDir(markerDir);
  });
  return { redis: server, markerDir: () => markerDir };
}

/** drain-init's lines for a worker the kernel OOM-killed and whose one job it put back, under the given instance id. */
export function expectOomKillRecovered(log: readonly Record<string, unknown>[], instanceId: string): void {
  expect(log.find((line) => String(line.msg).startsWith('worker OOM-killed'))).toMatchObject({
    level: 40,
    exit: 'signal SIGKILL',
  });
  expect(log.find((line) => line.msg === 'recovered the jobs of a dead worker')).toMatchObject({
    instanceId,
    requeued: 1,
  });
  expect(log.at(-1)).toMatchObject({ msg: 'child killed by signal', signal: 'SIGKILL', exitCode: 137 });
}
