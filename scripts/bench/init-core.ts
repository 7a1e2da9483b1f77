/**
 * Benchmark of the PID-1 core: drain-init against tini, dumb-init and catatonit, each run as PID 1 of a
 * new PID namespace (unshare --pid --fork --mount-proc), in one run on one machine.
 *
 *   1. start-up overhead: exec of the init until the child's main() runs, minus the same without an init
 *      (startup)
 *   2. the exec helper: what starting the worker through it (an inherited signal state, a terminal) adds
 *      to a spawn (spawn)
 *   3. signal forwarding latency: kill(init, SIGUSR1) until the child's sigwaitinfo returns (forwarding)
 *   4. reaping: the last of 1,000 orphans exits until no process but PID 1 and the child is left, and the
 *      init's CPU time for 10,000 orphans exiting one by one (reaping)
 *   5. idle memory: VmRSS and RssAnon of the init wrapping `sleep 30` (memory)
 *   6. the single executable (npm run build:binary): its size, start-up and idle memory beside the others
 *
 * Run with Node 24 (it strips the types): node scripts/bench/init-core.ts [SECTION...], all sections by
 * default. Needs root (PID namespaces), cc, unshare, tini and dumb-init; catatonit is optional. Prints a
 * markdown table on stdout, progress on stderr.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  accessSync,
  chmodSync,
  constants as fsConstants,
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  statSync,
} from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { childrenOf } from './proc.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BENCH_DIR = join(ROOT, '.bench');
const CHILD_SOURCE = join(ROOT, 'scripts/bench/bench-child.c');
const CHILD = join(BENCH_DIR, 'bench-child');
const CLI = join(ROOT, 'dist/main.mjs');
const BINARY = join(ROOT, `dist/bin/drain-init-linux-${process.arch}-glibc`);
const NODE = process.execPath;

const STARTUP_ROUNDS = 100; // C inits and the no-init baseline
const STARTUP_ROUNDS_NODE = 30; // drain-init and the bare-Node spawner
const STARTUP_WARMUP = 2;
const SIGNAL_SENDS = 1000;
const SIGNAL_GAP_MS = 2;
const ORPHANS = 1000;
const ORPHAN_RUNS = 5;
const ORPHAN_TIMEOUT_MS = 3000;
const SPREAD_ORPHANS = 10_000;
const SPREAD_LIFE_MS = 300;
const SPREAD_RUNS = 3;
const SPREAD_TIMEOUT_MS = 120_000;
const SPAWN_ROUNDS = 300;
const IDLE_WAIT_MS = 3000;

const TARGET_STARTUP_MS = 100;
const TARGET_FORWARD_P99_MS = 2;
const TARGET_FORWARD_P50_RATIO = 1.5;
const TARGET_REAP_CPU_RATIO = 3;
const TARGET_RSS_MB = 40;

const SECTIONS = ['startup', 'spawn', 'forwarding', 'reaping', 'memory'] as const;
type Section = (typeof SECTIONS)[number];

/** Set once SIGINT, SIGTERM or SIGHUP arrived: the handler is tearing everything down. */
let interrupted = false;

type InitKey = 'drain-init' | 'tini' | 'dumb-init' | 'catatonit';
const INIT_KEYS: readonly InitKey[] = ['drain-init', 'tini', 'dumb-init', 'catatonit'];

interface Variant {
  readonly label: string;
  /** The init's argv wrapping the child's argv; empty prefix means the child runs with no init. */
  readonly argv: (child: readonly string[]) => string[];
}

/** Ends the bench with a one-line message and exit code 1 (after an interrupt: just unwinds). */
function fail(message: string): never {
  if (interrupted) throw new Error('interrupted');
  process.stderr.write(`bench: ${message.replace(/\s*\n\s*/g, ' ').trim()}\n`);
  process.exit(1);
}

function progress(message: string): void {
  if (interrupted) return;
  process.stderr.write(`bench: ${message}\n`);
}

function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Processes: every one started is tracked and SIGKILLed if the bench ends early. unshare runs with
// --kill-child, so killing it SIGKILLs the namespace's init, and the kernel then kills the whole namespace.

const live = new Set<ChildProcess>();
const stderrTails = new WeakMap<ChildProcess, () => string>();

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/**
 * SIGKILLs what runs under `child`: for unshare, its child first (the namespace's init: the kernel then
 * kills everything in the namespace, and unshare reaps the init and exits by itself).
 */
function killTree(child: ChildProcess, alsoTop: boolean): void {
  if (child.pid === undefined) return;
  const below = childrenOf(child.pid);
  for (const pid of below) kill(pid, 'SIGKILL');
  if (alsoTop || below.length === 0) kill(child.pid, 'SIGKILL');
}

function killAll(): void {
  for (const child of live) killTree(child, true);
}

process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`bench: interrupted by ${signal}\n`);
    // The namespaces' inits first, so each unshare reaps its init and exits; then whatever is left.
    for (const child of live) killTree(child, false);
    const deadline = Date.now() + 1000;
    const poll = setInterval(() => {
      if (live.size > 0 && Date.now() < deadline) return;
      clearInterval(poll);
      killAll();
      process.exit(130);
    }, 10);
  });
}

function launch(command: string, args: readonly string[]): ChildProcess {
  if (interrupted) fail('interrupted');
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.on('close', () => live.delete(child));
  child.on('error', (error) => fail(`could not start ${command}: ${error.message}`));
  // Drain stderr like a container runtime would (drain-init logs there); keep the tail for error messages.
  let tail = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    tail = (tail + chunk).slice(-2000);
  });
  stderrTails.set(child, () => tail);
  return child;
}

function launchInNamespace(variant: Variant, child: readonly string[]): ChildProcess {
  return launch('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', ...variant.argv(child)]);
}

function closed(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Waits for the process to end, SIGKILLing it (and with it its namespace) after timeoutMs. */
async function finish(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (await closed(child, timeoutMs)) return;
  killTree(child, false);
  if (await closed(child, 3000)) return;
  killTree(child, true);
  await closed(child, 3000);
}

/** Host pid of the namespace's PID 1: the only child of the unshare process. */
async function initHostPid(unshare: ChildProcess): Promise<number> {
  const pid = unshare.pid;
  if (pid === undefined) fail('unshare did not start');
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    try {
      const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0];
      if (first !== undefined && first !== '') return Number(first);
    } catch {
      // unshare not there yet, or gone
    }
    await sleep(2);
  }
  fail(`no init appeared under unshare (pid ${pid}): ${stderrTails.get(unshare)?.() ?? ''}`.trim());
}

/** Reads stdout line by line; one reader at a time. */
class Lines {
  readonly #queue: string[] = [];
  #buffer = '';
  #ended = false;
  #waiter: (() => void) | undefined;

  constructor(stream: Readable | null) {
    if (stream === null) throw new Error('no stdout pipe');
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      this.#buffer += chunk;
      let newline: number;
      while ((newline = this.#buffer.indexOf('\n')) >= 0) {
        this.#queue.push(this.#buffer.slice(0, newline));
        this.#buffer = this.#buffer.slice(newline + 1);
      }
      this.#wake();
    });
    stream.on('end', () => {
      this.#ended = true;
      this.#wake();
    });
  }

  #wake(): void {
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.();
  }

  /** The next line, or undefined on timeout or end of stream. */
  async next(timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.#queue.shift();
      if (line !== undefined) return line;
      const left = deadline - Date.now();
      if (this.#ended || left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.#waiter = undefined;
          resolve();
        }, left);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Statistics and formatting

function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

const median = (values: readonly number[]): number => percentile(values, 50);

function ms(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return '–';
  const abs = Math.abs(value);
  const digits = abs < 1 ? 3 : abs < 10 ? 2 : 1;
  return `${value.toFixed(digits)} ms`;
}

function mb(value: number | undefined): string {
  return value === undefined || Number.isNaN(value) ? '–' : `${value.toFixed(1)} MB`;
}

/** A file size given in MB (10^6 bytes): kB below 1 MB. */
function fileSize(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return '–';
  return value < 1 ? `${(value * 1000).toFixed(0)} kB` : `${value.toFixed(1)} MB`;
}

function ratio(drain: number | undefined, tini: number | undefined): string {
  if (drain === undefined || tini === undefined || Number.isNaN(drain) || Number.isNaN(tini) || tini <= 0) return 'n/a';
  const r = drain / tini;
  return `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

function verdict(value: number | undefined, limit: number, unit: string): string {
  if (value === undefined || Number.isNaN(value)) return `< ${limit} ${unit}: FAIL (not measured)`;
  return `< ${limit} ${unit}: ${value < limit ? 'PASS' : 'FAIL'}`;
}

function ratioVerdict(drain: number | undefined, tini: number | undefined, limit: number): string {
  if (drain === undefined || tini === undefined || Number.isNaN(drain) || Number.isNaN(tini) || tini <= 0)
    return `≤ ${limit}× tini: FAIL (not measured)`;
  return `≤ ${limit}× tini: ${drain / tini <= limit ? 'PASS' : 'FAIL'}`;
}

/** The sections named on the command line, or all of them. */
function selectedSections(args: readonly string[]): Set<Section> {
  if (args.length === 0) return new Set(SECTIONS);
  for (const arg of args) {
    if (!(SECTIONS as readonly string[]).includes(arg)) fail(`unknown section '${arg}': ${SECTIONS.join(', ')}`);
  }
  return new Set(args as Section[]);
}

// ---------------------------------------------------------------------------------------------------------
// Pre-flight

function preflight(available: Set<InitKey>, sections: ReadonlySet<Section>): void {
  const major = Number(process.versions.node.split('.')[0]);
  if (major !== 24) fail(`needs Node 24 (running ${process.version} at ${NODE}); put node_modules/.bin first in PATH`);
  for (const needed of ['unshare', 'cc', 'tini', 'dumb-init']) {
    if (which(needed) === undefined) fail(`missing binary '${needed}' (bash scripts/setup.sh installs it)`);
  }
  if (which('catatonit') !== undefined) available.add('catatonit');
  else progress('catatonit not installed: its column stays empty');
  if (!existsSync(CLI) || !existsSync(join(ROOT, 'dist/drain_init.node'))) {
    fail('drain-init is not built (dist/main.mjs or dist/drain_init.node missing): run npm run build');
  }
  const withBinary = sections.has('startup') || sections.has('memory');
  if (withBinary && !existsSync(BINARY))
    fail(`the single executable is not built (${BINARY} missing): run npm run build:binary`);
  const probe = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { stdio: 'ignore' });
  if (probe.status !== 0)
    fail('cannot create a PID namespace (unshare --pid --fork --mount-proc true failed): run as root');
  mkdirSync(BENCH_DIR, { recursive: true });
  try {
    execFileSync('cc', ['-O2', '-Wall', '-o', CHILD, CHILD_SOURCE], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    fail(`cc failed to compile ${CHILD_SOURCE}: ${(error as Error).message.split('\n').slice(0, 3).join(' ')}`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// 1. Start-up overhead

/** ns from just before spawning unshare until the child's main() started. */
async function startupOnce(variant: Variant): Promise<number> {
  const before = process.hrtime.bigint();
  const unshare = launchInNamespace(variant, [CHILD, 'start']);
  const line = await new Lines(unshare.stdout).next(10_000);
  await finish(unshare, 5000);
  if (line === undefined || !/^\d+$/.test(line))
    fail(`${variant.label}: the start-up child printed no time (${stderrTails.get(unshare)?.() ?? ''})`);
  return Number(BigInt(line) - before);
}

interface StartupResult {
  readonly medianMs: number;
  readonly p90Ms: number;
}

async function measureStartup(
  variants: ReadonlyMap<string, Variant>,
  nodeKeys: ReadonlySet<string>,
): Promise<Map<string, StartupResult>> {
  const samples = new Map<string, number[]>([...variants.keys()].map((key) => [key, []]));
  for (let round = -STARTUP_WARMUP; round < STARTUP_ROUNDS; round++) {
    for (const [key, variant] of variants) {
      if (nodeKeys.has(key) && round >= STARTUP_ROUNDS_NODE) continue;
      const ns = await startupOnce(variant);
      if (round >= 0) samples.get(key)?.push(ns / 1e6);
    }
  }
  const baseline = median(samples.get('baseline') ?? []);
  const results = new Map<string, StartupResult>();
  for (const [key, values] of samples) {
    const overheads = values.map((value) => value - baseline);
    results.set(key, { medianMs: median(overheads), p90Ms: percentile(overheads, 90) });
  }
  results.set('baseline-absolute', { medianMs: baseline, p90Ms: percentile(samples.get('baseline') ?? [], 90) });
  return results;
}

// ---------------------------------------------------------------------------------------------------------
// 2. The exec helper's cost

interface SpawnResult {
  readonly medianMs: number;
  readonly p90Ms: number;
}

/**
 * ms from spawning the start child until its main() runs, directly and through the exec helper (as
 * drain-init starts a worker that gets a blocked SIGUSR2 back), interleaved, from this process.
 */
async function measureSpawn(): Promise<Map<string, SpawnResult>> {
  const module = { exports: {} as { execHelperPath(): string } };
  process.dlopen(module, join(ROOT, 'dist/drain_init.node'));
  const helper = module.exports.execHelperPath();
  const blockedUsr2 = (1n << 11n).toString(16).padStart(16, '0');
  const ways: [string, () => ChildProcess][] = [
    ['direct', () => spawn(CHILD, ['start'], { stdio: ['ignore', 'pipe', 'ignore'], detached: true })],
    [
      'helper',
      () =>
        spawn(helper, [blockedUsr2, '0'.repeat(16), '0', CHILD, 'start'], {
          stdio: ['ignore', 'pipe', 'ignore', 'pipe'],
          detached: true,
        }),
    ],
  ];
  const samples = new Map<string, number[]>(ways.map(([key]) => [key, []]));
  for (let round = -STARTUP_WARMUP; round < SPAWN_ROUNDS; round++) {
    for (const [key, start] of ways) {
      const before = process.hrtime.bigint();
      const child = start();
      const line = await new Lines(child.stdout).next(5000);
      await new Promise((resolve) => (child.exitCode === null ? child.once('close', resolve) : resolve(undefined)));
      if (line === undefined || !/^\d+$/.test(line)) fail(`spawn ${key}: the start child printed no time`);
      if (round >= 0) samples.get(key)?.push(Number(BigInt(line) - before) / 1e6);
    }
  }
  return new Map(
    [...samples].map(([key, values]) => [key, { medianMs: median(values), p90Ms: percentile(values, 90) }]),
  );
}

// ---------------------------------------------------------------------------------------------------------
// 3. Signal forwarding latency

interface ForwardResult {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly lost: number;
}

interface ForwardTarget {
  readonly key: string;
  readonly proc: ChildProcess;
  readonly lines: Lines;
  readonly pid: number;
  readonly latencies: number[];
  lost: number;
}

/**
 * All variants are started at once and sent to in turn, one signal in flight at a time, so that load from
 * elsewhere on the machine falls on every init alike. A variant of undefined is the floor: SIGUSR1 sent
 * straight to the child, with no namespace and no init.
 */
async function measureForwarding(
  variants: ReadonlyMap<string, Variant | undefined>,
): Promise<Map<string, ForwardResult>> {
  const targets: ForwardTarget[] = [];
  try {
    for (const [key, variant] of variants) {
      const proc = variant === undefined ? launch(CHILD, ['sigwait']) : launchInNamespace(variant, [CHILD, 'sigwait']);
      const lines = new Lines(proc.stdout);
      if ((await lines.next(10_000)) !== 'ready')
        fail(`${key}: the signal child did not get ready (${stderrTails.get(proc)?.() ?? ''})`);
      const pid = variant === undefined ? (proc.pid ?? fail('child did not start')) : await initHostPid(proc);
      targets.push({ key, proc, lines, pid, latencies: [], lost: 0 });
    }
    for (let i = 0; i < SIGNAL_SENDS; i++) {
      for (const target of targets) {
        const sent = process.hrtime.bigint();
        try {
          process.kill(target.pid, 'SIGUSR1');
        } catch (error) {
          if (interrupted) return new Map();
          fail(
            `${target.key}: cannot signal the init (pid ${target.pid}), it ended early: ${(error as Error).message} ${stderrTails.get(target.proc)?.() ?? ''}`.trim(),
          );
        }
        for (;;) {
          const line = await target.lines.next(1000);
          if (line === undefined) {
            target.lost++;
            break;
          }
          const received = BigInt(line);
          if (received < sent) continue; // a late answer to a send already counted as lost
          target.latencies.push(Number(received - sent) / 1e6);
          break;
        }
        await sleep(SIGNAL_GAP_MS);
      }
    }
  } finally {
    for (const target of targets) {
      try {
        process.kill(target.pid, 'SIGTERM'); // each init forwards it; the child dies of it, then the init exits
      } catch {
        // already gone
      }
    }
    await Promise.all(targets.map((target) => finish(target.proc, 3000)));
  }
  return new Map(
    targets.map((t) => [
      t.key,
      { p50Ms: percentile(t.latencies, 50), p99Ms: percentile(t.latencies, 99), lost: t.lost },
    ]),
  );
}

// ---------------------------------------------------------------------------------------------------------
// 4. Reaping: 1,000 orphans at once, 10,000 one by one

interface ReapResult {
  /** Median ms from the last orphan's exit until all were reaped; undefined when a run timed out. */
  readonly medianMs: number | undefined;
  readonly maxMs: number | undefined;
  readonly exitStormMs: number;
  readonly timedOut: boolean;
}

async function reapOnce(variant: Variant): Promise<{ reapMs: number | undefined; exitStormMs: number }> {
  const proc = launchInNamespace(variant, [CHILD, 'orphans', String(ORPHANS), String(ORPHAN_TIMEOUT_MS)]);
  const line = await new Lines(proc.stdout).next(ORPHAN_TIMEOUT_MS + 15_000);
  await finish(proc, 5000);
  const fields = (line ?? '').split(' ').map(Number);
  const [reapNs, exitNs] = fields;
  if (reapNs === undefined || exitNs === undefined || fields.some(Number.isNaN)) {
    fail(`${variant.label}: the orphans child printed '${line ?? ''}' (${stderrTails.get(proc)?.() ?? ''})`);
  }
  return { reapMs: reapNs < 0 ? undefined : reapNs / 1e6, exitStormMs: exitNs / 1e6 };
}

async function measureReaping(variants: ReadonlyMap<InitKey, Variant>): Promise<Map<InitKey, ReapResult>> {
  const reaps = new Map<InitKey, number[]>();
  const storms = new Map<InitKey, number[]>();
  const timedOut = new Set<InitKey>();
  for (let run = 0; run < ORPHAN_RUNS; run++) {
    for (const [key, variant] of variants) {
      if (timedOut.has(key)) continue; // one timeout is enough: do not spend the time budget on it
      const { reapMs, exitStormMs } = await reapOnce(variant);
      storms.set(key, [...(storms.get(key) ?? []), exitStormMs]);
      if (reapMs === undefined) timedOut.add(key);
      else reaps.set(key, [...(reaps.get(key) ?? []), reapMs]);
    }
  }
  const results = new Map<InitKey, ReapResult>();
  for (const key of variants.keys()) {
    const values = reaps.get(key) ?? [];
    const failed = timedOut.has(key);
    results.set(key, {
      medianMs: failed ? undefined : median(values),
      maxMs: failed ? undefined : percentile(values, 100),
      exitStormMs: median(storms.get(key) ?? []),
      timedOut: failed,
    });
  }
  return results;
}

/** The init's CPU time for orphans exiting one by one while others live (median of SPREAD_RUNS). */
async function measureReapCpu(variants: ReadonlyMap<InitKey, Variant>): Promise<Map<InitKey, { cpuMs: number }>> {
  const samples = new Map<InitKey, number[]>();
  for (let run = 0; run < SPREAD_RUNS; run++) {
    for (const [key, variant] of variants) {
      const args = [CHILD, 'orphans-spread', String(SPREAD_ORPHANS), String(SPREAD_LIFE_MS), String(SPREAD_TIMEOUT_MS)];
      const proc = launchInNamespace(variant, args);
      const line = await new Lines(proc.stdout).next(SPREAD_TIMEOUT_MS + 15_000);
      await finish(proc, 5000);
      const [cpuNs] = (line ?? '').split(' ').map(Number);
      if (cpuNs === undefined || Number.isNaN(cpuNs) || cpuNs < 0)
        fail(`${variant.label}: the orphans-spread child printed '${line ?? ''}' (${stderrTails.get(proc)?.() ?? ''})`);
      samples.set(key, [...(samples.get(key) ?? []), cpuNs / 1e6]);
    }
  }
  return new Map([...samples].map(([key, values]) => [key, { cpuMs: median(values) }]));
}

// ---------------------------------------------------------------------------------------------------------
// 5. Idle memory

interface MemoryResult {
  readonly rssMb: number;
  readonly anonMb: number;
}

function statusKb(status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match?.[1] === undefined ? Number.NaN : Number(match[1]);
}

async function measureIdleMemory(variants: ReadonlyMap<string, Variant>): Promise<Map<string, MemoryResult>> {
  const running = [...variants].map(([key, variant]) => ({ key, proc: launchInNamespace(variant, ['sleep', '30']) }));
  const results = new Map<string, MemoryResult>();
  try {
    const pids = await Promise.all(running.map(({ proc }) => initHostPid(proc)));
    await sleep(IDLE_WAIT_MS);
    running.forEach(({ key }, index) => {
      const status = readFileSync(`/proc/${pids[index] ?? 0}/status`, 'utf8');
      const toMb = (kb: number): number => (kb * 1024) / 1e6;
      results.set(key, { rssMb: toMb(statusKb(status, 'VmRSS')), anonMb: toMb(statusKb(status, 'RssAnon')) });
    });
  } finally {
    for (const { proc } of running) killTree(proc, false);
    await Promise.all(running.map(({ proc }) => finish(proc, 3000)));
  }
  return results;
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = Date.now();
  const loadAtStart = loadavg()[0] ?? Number.NaN;
  const sections = selectedSections(process.argv.slice(2));
  const available = new Set<InitKey>(['drain-init', 'tini', 'dumb-init']);
  preflight(available, sections);

  const inits = new Map<InitKey, Variant>();
  const initVariant = (key: InitKey, extra: readonly string[] = []): Variant => {
    switch (key) {
      case 'drain-init':
        return {
          label: `drain-init${extra.length > 0 ? ` ${extra.join(' ')}` : ''}`,
          argv: (child) => [NODE, CLI, ...extra, '--', ...child],
        };
      default:
        return { label: key, argv: (child) => [key, '--', ...child] };
    }
  };
  for (const key of INIT_KEYS) if (available.has(key)) inits.set(key, initVariant(key));
  const drainQuiet = initVariant('drain-init', ['--log-level', 'warn']);
  const nodeFloor: Variant = {
    label: 'bare Node spawner',
    argv: (child) => [
      NODE,
      '-e',
      "require('node:child_process').spawn(process.argv[1], process.argv.slice(2), { stdio: 'inherit' })",
      ...child,
    ],
  };
  const binary: Variant = { label: 'drain-init single executable', argv: (child) => [BINARY, '--', ...child] };
  const measure = async <T>(section: Section, what: string, run: () => Promise<T>): Promise<T | undefined> => {
    if (!sections.has(section)) return undefined;
    progress(what);
    return run();
  };

  const startup = await measure(
    'startup',
    `start-up: ${STARTUP_ROUNDS_NODE} runs of drain-init, ${STARTUP_ROUNDS} of each C init and of the no-init baseline`,
    () =>
      measureStartup(
        new Map<string, Variant>([
          ['baseline', { label: 'no init', argv: (child) => [...child] }],
          ...inits,
          ['binary', binary],
          ['node-floor', nodeFloor],
        ]),
        new Set(['drain-init', 'binary', 'node-floor']),
      ),
  );
  const spawnCost = await measure(
    'spawn',
    `the exec helper: ${SPAWN_ROUNDS} spawns directly and through it`,
    measureSpawn,
  );
  const forwarding = await measure(
    'forwarding',
    `signal forwarding: ${SIGNAL_SENDS} SIGUSR1 per init, ${SIGNAL_GAP_MS} ms apart`,
    () =>
      measureForwarding(
        new Map<string, Variant | undefined>([
          ['floor', undefined],
          ['drain-init', drainQuiet],
          ['drain-init-info', inits.get('drain-init')],
          ...[...inits].filter(([key]) => key !== 'drain-init'),
        ]),
      ),
  );
  const reaping = await measure(
    'reaping',
    `reaping: ${ORPHAN_RUNS} runs of ${ORPHANS} orphans at once, then ${SPREAD_RUNS} of ${SPREAD_ORPHANS.toLocaleString('en')} one by one, per init`,
    async () => ({ burst: await measureReaping(inits), cpu: await measureReapCpu(inits) }),
  );
  const memory = await measure(
    'memory',
    `idle memory: each init wrapping sleep 30 for ${IDLE_WAIT_MS} ms`,
    async () => {
      const shared = await measureIdleMemory(new Map<string, Variant>([...inits, ['node-floor', nodeFloor]]));
      // In a container drain-init is the only process mapping its node executable; here the bench and the
      // other Node processes map the same file, and the kernel cannot reclaim pages others map too.
      const privateNode = join(ROOT, '.bench', 'node');
      copyFileSync(NODE, privateNode);
      chmodSync(privateNode, 0o755);
      const alone = await measureIdleMemory(
        new Map<string, Variant>([
          [
            'drain-init',
            { label: 'drain-init on its own node copy', argv: (child) => [privateNode, CLI, '--', ...child] },
          ],
          ['binary', binary],
        ]),
      );
      return { shared, alone };
    },
  );

  // ------------------------------------------------------------------------------------------- report
  const columns = INIT_KEYS;
  const cell = <T>(
    results: ReadonlyMap<string, T>,
    key: string,
    pick: (result: T) => number | undefined,
    format: (value: number | undefined) => string,
  ): string => {
    const result = results.get(key);
    return result === undefined ? '–' : format(pick(result));
  };
  const rows: string[][] = [];
  const addRow = <T>(
    metric: string,
    results: ReadonlyMap<string, T>,
    pick: (result: T) => number | undefined,
    format: (value: number | undefined) => string,
    target: string,
    drainKey = 'drain-init',
    onlyDrain = false,
  ): void => {
    const drain = results.get(drainKey);
    const tini = results.get('tini');
    rows.push([
      metric,
      ...columns.map((key) =>
        key === 'drain-init'
          ? cell(results, drainKey, pick, format)
          : onlyDrain
            ? ''
            : cell(results, key, pick, format),
      ),
      ratio(drain === undefined ? undefined : pick(drain), tini === undefined ? undefined : pick(tini)),
      target,
    ]);
  };
  const method: string[] = [
    `- Every init runs as PID 1 of its own PID namespace: \`unshare --pid --fork --mount-proc --kill-child INIT -- CHILD\`; the child is a small C program (scripts/bench/bench-child.c). drain-init runs as \`${NODE.replace(ROOT, '')} dist/main.mjs\` with default options unless noted; every init's stderr goes to a pipe the bench drains.`,
  ];

  if (startup !== undefined) {
    const drainStartup = startup.get('drain-init');
    addRow(
      'Start-up overhead, median',
      startup,
      (r) => r.medianMs,
      ms,
      verdict(drainStartup?.medianMs, TARGET_STARTUP_MS, 'ms'),
    );
    addRow(
      'Start-up overhead, p90',
      startup,
      (r) => r.p90Ms,
      ms,
      verdict(drainStartup?.p90Ms, TARGET_STARTUP_MS, 'ms'),
    );
    const baseline = startup.get('baseline-absolute');
    const nodeStart = startup.get('node-floor');
    method.push(
      `- Start-up: CLOCK_MONOTONIC just before spawning unshare until the child's main() reads it, minus the median of the same with the child and no init (${ms(baseline?.medianMs)}); ${STARTUP_ROUNDS_NODE} runs for drain-init, ${STARTUP_ROUNDS} for C inits, interleaved, after ${STARTUP_WARMUP} warm-up rounds. A bare Node 24 that only spawns the child (\`node -e "spawn(...)"\`) adds ${ms(nodeStart?.medianMs)} median, p90 ${ms(nodeStart?.p90Ms)}: drain-init's own share is ${ms((drainStartup?.medianMs ?? Number.NaN) - (nodeStart?.medianMs ?? Number.NaN))}.`,
    );
  }
  if (spawnCost !== undefined) {
    const direct = spawnCost.get('direct');
    const helper = spawnCost.get('helper');
    const added = (helper?.medianMs ?? Number.NaN) - (direct?.medianMs ?? Number.NaN);
    rows.push(['Worker spawn through the exec helper, added (median)', ms(added), '', '', '', '', '']);
    method.push(
      `- The exec helper: a spawn of the start child (child_process.spawn, detached, as drain-init's execa does) until its main() runs, ${SPAWN_ROUNDS} times directly (median ${ms(direct?.medianMs)}, p90 ${ms(direct?.p90Ms)}) and through the helper from its memfd, giving it a blocked SIGUSR2 (median ${ms(helper?.medianMs)}, p90 ${ms(helper?.p90Ms)}), interleaved, from the bench process. drain-init takes that path only for a worker that gets a signal state other than the default or the terminal; before the helper, the terminal's path started a whole second Node (see the bare Node spawner's start-up).`,
    );
  }
  if (forwarding !== undefined) {
    const p50 = (key: string): number | undefined => forwarding.get(key)?.p50Ms;
    addRow(
      'Signal forwarding p50 (drain-init --log-level warn)',
      forwarding,
      (r) => r.p50Ms,
      ms,
      ratioVerdict(p50('drain-init'), p50('tini'), TARGET_FORWARD_P50_RATIO),
    );
    addRow(
      'Signal forwarding p99 (drain-init --log-level warn)',
      forwarding,
      (r) => r.p99Ms,
      ms,
      verdict(forwarding.get('drain-init')?.p99Ms, TARGET_FORWARD_P99_MS, 'ms'),
    );
    addRow(
      'Signal forwarding p50 (drain-init default info logging)',
      forwarding,
      (r) => r.p50Ms,
      ms,
      ratioVerdict(p50('drain-init-info'), p50('tini'), TARGET_FORWARD_P50_RATIO),
      'drain-init-info',
      true,
    );
    addRow(
      'Signal forwarding p99 (drain-init default info logging)',
      forwarding,
      (r) => r.p99Ms,
      ms,
      verdict(forwarding.get('drain-init-info')?.p99Ms, TARGET_FORWARD_P99_MS, 'ms'),
      'drain-init-info',
      true,
    );
    const lost = [...forwarding].filter(([, r]) => r.lost > 0).map(([key, r]) => `${key} lost ${r.lost}`);
    const floor = forwarding.get('floor');
    method.push(
      `- Forwarding: ${SIGNAL_SENDS} × kill(init host pid, SIGUSR1) per init, all inits running side by side and sent to in turn, ${SIGNAL_GAP_MS} ms apart, each after the previous arrived; latency = the child's CLOCK_MONOTONIC when sigwaitinfo returns minus the sender's process.hrtime.bigint() just before kill(). Floor, sent straight to the child with no init: p50 ${ms(floor?.p50Ms)}, p99 ${ms(floor?.p99Ms)}.${lost.length > 0 ? ` Lost (no arrival in 1 s): ${lost.join(', ')}.` : ''}`,
    );
  }
  if (reaping !== undefined) {
    const reapFormat = (value: number | undefined): string =>
      value === undefined ? `not done in ${ORPHAN_TIMEOUT_MS / 1000} s` : ms(value);
    addRow(
      `Reap ${ORPHANS.toLocaleString('en')} orphans after the last exit, median`,
      reaping.burst,
      (r) => r.medianMs,
      reapFormat,
      '',
    );
    addRow(
      `Init CPU to reap ${SPREAD_ORPHANS.toLocaleString('en')} orphans exiting one by one, median`,
      reaping.cpu,
      (r) => r.cpuMs,
      ms,
      ratioVerdict(reaping.cpu.get('drain-init')?.cpuMs, reaping.cpu.get('tini')?.cpuMs, TARGET_REAP_CPU_RATIO),
    );
    const reapDetail = [...reaping.burst]
      .map(([key, r]) => `${key} ${r.timedOut ? 'timed out' : `max ${ms(r.maxMs)}`} (exits took ${ms(r.exitStormMs)})`)
      .join('; ');
    method.push(
      `- Reaping: the child double-forks ${ORPHANS} orphans, opens a pipe gate so they all exit at once (each notes its exit time), then polls its namespace's /proc until no process but PID 1 and itself is listed (zombies stay listed until reaped); ${ORPHAN_RUNS} runs per init (timeout ${ORPHAN_TIMEOUT_MS / 1000} s): ${reapDetail}.`,
      `- Reaping CPU: the child double-forks ${SPREAD_ORPHANS.toLocaleString('en')} orphans one after another, each exiting ${SPREAD_LIFE_MS} ms after its start, so that they exit one by one while a few hundred live on; the init's CPU time is the run time of all its threads (/proc/1/task/*/schedstat) from the first fork until 200 ms after the last reap; median of ${SPREAD_RUNS} runs per init.`,
    );
  }
  if (memory !== undefined) {
    const { shared, alone } = memory;
    const all = new Map([...shared, ...alone]);
    addRow('Idle VmRSS, node executable shared with other processes', shared, (r) => r.rssMb, mb, '');
    addRow(
      'Idle VmRSS, alone with its node executable (as in a container)',
      all,
      (r) => r.rssMb,
      mb,
      verdict(alone.get('drain-init')?.rssMb, TARGET_RSS_MB, 'MB'),
    );
    addRow('Idle RssAnon', shared, (r) => r.anonMb, mb, '');
    const bareMemory = shared.get('node-floor');
    method.push(
      `- Idle memory: VmRSS and RssAnon from /proc/<init host pid>/status, ${IDLE_WAIT_MS / 1000} s after start, wrapping \`sleep 30\` (MB = 10^6 bytes). drain-init lets the kernel reclaim the pages of its read-only file mappings 2 s after start (madvise MADV_PAGEOUT), which works only for pages no other process maps: the 'alone' row runs it from a private copy of the node executable, as it is alone in a container. The bare Node spawner: VmRSS ${mb(bareMemory?.rssMb)}, RssAnon ${mb(bareMemory?.anonMb)}.`,
    );
  }
  if (startup !== undefined || memory !== undefined) {
    const sizes = new Map<string, { mb: number }>([['binary', { mb: statSync(BINARY).size / 1e6 }]]);
    for (const key of INIT_KEYS) {
      const path = key === 'drain-init' ? undefined : which(key);
      if (path !== undefined) sizes.set(key, { mb: statSync(realpathSync(path)).size / 1e6 });
    }
    addRow('Single executable: size', sizes, (r) => r.mb, fileSize, '', 'binary');
  }
  if (startup !== undefined) {
    const drainBinaryStartup = startup.get('binary');
    addRow(
      'Single executable: start-up overhead, median',
      startup,
      (r) => r.medianMs,
      ms,
      verdict(drainBinaryStartup?.medianMs, TARGET_STARTUP_MS, 'ms'),
      'binary',
    );
    addRow(
      'Single executable: start-up overhead, p90',
      startup,
      (r) => r.p90Ms,
      ms,
      verdict(drainBinaryStartup?.p90Ms, TARGET_STARTUP_MS, 'ms'),
      'binary',
    );
  }
  if (memory !== undefined) {
    addRow(
      'Single executable: idle VmRSS (alone, as in a container)',
      new Map([...memory.shared, ...memory.alone]),
      (r) => r.rssMb,
      mb,
      verdict(memory.alone.get('binary')?.rssMb, TARGET_RSS_MB, 'MB'),
      'binary',
    );
  }
  if (startup !== undefined || memory !== undefined) {
    method.push(
      `- Single executable: ${BINARY.replace(ROOT, '')} (npm run build:binary: pkg's SEA mode on a stripped Node ${process.versions.node}, the native addon inside), run as \`${BINARY.replace(ROOT, '')} -- CHILD\` in the same rounds as the others; its idle memory alone, as its file is mapped by no other process. Sizes are of the executables themselves (tini, dumb-init and catatonit as Debian installs them). Script mode for comparison: the node executable is ${fileSize(statSync(NODE).size / 1e6)}, the bundle ${fileSize(statSync(join(ROOT, 'dist/drain-init.mjs')).size / 1e6)}.`,
    );
  }

  const header = [
    'Metric',
    ...columns.map((key) => (available.has(key) ? key : `${key} (not installed)`)),
    'drain-init / tini',
    'Target (drain-init)',
  ];
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  const out: string[] = [];
  out.push(
    `## PID-1 core: drain-init vs tini, dumb-init, catatonit (Node ${process.versions.node}, ${new Date().toISOString()}${sections.size < SECTIONS.length ? `; ${[...sections].join(', ')} only` : ''})`,
    '',
  );
  out.push(line(header), line(header.map((_, i) => (i === 0 ? '---' : '---:'))), ...rows.map(line), '');
  out.push('Method:', ...method);
  out.push(
    `- Wall time: ${((Date.now() - started) / 1000).toFixed(0)} s on ${availableParallelism()} CPUs; 1-minute load average ${loadAtStart.toFixed(2)} at the start, ${loadavg()[0]?.toFixed(2) ?? '?'} at the end (other work on the machine shows in the p90/p99 figures).`,
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

main().then(
  () => {
    if (interrupted) return;
    killAll();
    process.exit(0);
  },
  (error: unknown) => {
    if (interrupted) return; // the signal handler ends the process
    killAll();
    fail(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  },
);
