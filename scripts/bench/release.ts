/**
 * Benchmark of the release executables (npm run build:binary): for each build of this machine's
 * architecture, its size, its cold start beside bare Node and tini in the same rounds, and its idle memory.
 *
 *   cold start  from the spawn of `unshare --pid --fork --mount-proc INIT -- bench-child start` until the
 *               child's main() runs (CLOCK_MONOTONIC in both), each init PID 1 of its own namespace;
 *               ROUNDS rounds, the inits interleaved in each, median and p90. "Bare Node" is Node 24
 *               spawning the same child from `-e` (its own start-up plus a spawn: the floor of any Node init).
 *   idle memory VmRSS, and its anonymous, file and shared-memory parts, of the init wrapping `sleep 30`,
 *               IDLE_WAIT_MS after start (drain-init trims its resident set 2 s after start), each alone.
 *
 * Run as root with Node 24: node scripts/bench/release.ts. Prints a markdown table on stdout.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { kbOf, median, percentile } from './proc.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD_SOURCE = join(ROOT, 'scripts/bench/bench-child.c');
const CHILD = join(ROOT, '.bench/bench-child');
const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64';
const ROUNDS = 15;
const WARMUP = 2;
const IDLE_WAIT_MS = 3000;

interface Init {
  readonly label: string;
  readonly argv: readonly string[];
  readonly file?: string;
}

const release = (variant: string): Init => {
  const file = join(ROOT, `dist/bin/drain-init-linux-${ARCH}-${variant}`);
  return { label: `drain-init, ${variant} build`, argv: [file, '--log-level', 'warn', '--'], file };
};

const INITS: readonly Init[] = [
  {
    label: 'bare Node 24',
    argv: [
      process.execPath,
      '-e',
      "require('node:child_process').spawn(process.argv[1], process.argv.slice(2), { stdio: 'inherit' })",
    ],
    file: process.execPath,
  },
  { label: 'tini', argv: ['tini', '--'], file: '/usr/bin/tini' },
  release('glibc'),
  release('standalone'),
  // Other builds to compare with, in the same rounds (an earlier release, say): BENCH_EXTRA=label=path,...
  ...(process.env.BENCH_EXTRA ?? '')
    .split(',')
    .filter((entry) => entry.includes('='))
    .map((entry): Init => {
      const [label = '', file = ''] = entry.split('=');
      return { label, argv: [file, '--log-level', 'warn', '--'], file };
    }),
];

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

/** Runs argv as PID 1 of a new PID namespace; resolves to its stdout once it ended. */
function inNamespace(argv: readonly string[]): { pid: number | undefined; done: Promise<string> } {
  const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', ...argv], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return { pid: child.pid, done: new Promise((resolve) => child.on('close', () => resolve(out))) };
}

async function coldStartMs(init: Init): Promise<number> {
  const before = process.hrtime.bigint();
  const out = (await inNamespace([...init.argv, CHILD, 'start']).done).trim();
  if (!/^\d+$/.test(out)) fail(`${init.label}: the child printed no time`);
  return Number(BigInt(out) - before) / 1e6;
}

/** VmRSS and its parts, MB, of the init IDLE_WAIT_MS after it started `sleep 30` as PID 1. */
async function idleMemory(init: Init): Promise<Record<string, number>> {
  const run = spawn('unshare', ['--pid', '--fork', '--mount-proc', ...init.argv, 'sleep', '30'], { stdio: 'ignore' });
  const ended = new Promise((resolve) => run.on('close', resolve));
  let initPid: number | undefined;
  try {
    await sleep(IDLE_WAIT_MS);
    initPid = Number(readFileSync(`/proc/${run.pid}/task/${run.pid}/children`, 'utf8').trim().split(' ')[0]);
    const status = readFileSync(`/proc/${initPid}/status`, 'utf8');
    const mb = (field: string): number => (kbOf(status, field) * 1024) / 1e6;
    return { rss: mb('VmRSS'), anon: mb('RssAnon'), file: mb('RssFile'), shmem: mb('RssShmem') };
  } finally {
    // SIGKILL to PID 1 of the namespace ends everything in it, then unshare ends.
    if (initPid !== undefined) process.kill(initPid, 'SIGKILL');
    else run.kill('SIGKILL');
    await ended;
  }
}

async function main(): Promise<void> {
  for (const init of INITS)
    if (init.file !== undefined && !existsSync(init.file))
      fail(`${init.file} is missing (npm run build:binary builds the release executables)`);
  mkdirSync(join(ROOT, '.bench'), { recursive: true });
  execFileSync('cc', ['-O2', '-o', CHILD, CHILD_SOURCE]);
  const load = loadavg()[0] ?? Number.NaN;

  const samples = new Map(INITS.map((init) => [init, [] as number[]]));
  for (let round = -WARMUP; round < ROUNDS; round++) {
    for (const init of INITS) {
      const value = await coldStartMs(init);
      if (round >= 0) samples.get(init)?.push(value);
    }
  }
  const memory = new Map<Init, Record<string, number>>();
  for (const init of INITS) memory.set(init, await idleMemory(init));

  const node = median(samples.get(INITS[0] as Init) ?? []);
  const out: string[] = [
    `Release executables, linux-${ARCH}: ${ROUNDS} interleaved rounds (after ${WARMUP} warm-up), 1-minute load ${load.toFixed(1)} at start`,
    '',
    '| | Size | Cold start, median | p90 | / bare Node | Idle VmRSS | anon | file | shmem |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const init of INITS) {
    const values = samples.get(init) ?? [];
    const mem = memory.get(init) ?? {};
    const size = init.file === undefined ? Number.NaN : statSync(init.file).size / 1e6;
    const cells = [
      init.label,
      `${size < 1 ? (size * 1000).toFixed(0) + ' kB' : size.toFixed(1) + ' MB'}`,
      `${median(values).toFixed(1)} ms`,
      `${percentile(values, 90).toFixed(1)} ms`,
      `${(median(values) / node).toFixed(2)}×`,
      ...['rss', 'anon', 'file', 'shmem'].map((key) => `${(mem[key] ?? Number.NaN).toFixed(1)} MB`),
    ];
    out.push(`| ${cells.join(' | ')} |`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
