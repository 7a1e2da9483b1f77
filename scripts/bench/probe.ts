/**
 * Benchmark of the probe endpoint, in one run: drain-init as PID 1 of a new PID namespace wrapping `sleep`,
 * its endpoint on a free loopback port, loaded with wrk (one thread, 10 connections, 10 s each):
 *   1. GET /livez on connections kept alive (as Prometheus scrapes);
 *   2. GET /livez on a new connection per request (`Connection: close`, as the kubelet probes).
 * For each: requests per second, latency p50 and p99, and drain-init's memory (VmRSS and RssAnon from
 * /proc) before and at its peak during the load, sampled every 100 ms. Then the idle memory of the same
 * drain-init with --probe-port 0, which shows what the endpoint itself costs at rest.
 *
 * Run with Node 24 (it strips the types) after `npm run build`: node scripts/bench/probe.ts. Needs root
 * (PID namespaces) and wrk (Debian `wrk`, installed by scripts/setup.sh). Prints a markdown table on stdout.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { killRun, startDrainInit, waitFor, type Run } from '../../test/helpers/pid1.ts';
import { startWithProbe } from '../../test/helpers/probe.ts';

const DURATION_S = 10;
const CONNECTIONS = 10;
/** drain-init trims its resident set 2 s after start: figures are taken after that. */
const SETTLE_MS = 3_000;
const SAMPLE_EVERY_MS = 100;
const WORKER = ['--', 'sleep', '600'];

interface Memory {
  readonly rssKb: number;
  readonly anonKb: number;
}

interface Load {
  readonly label: string;
  readonly requestsPerSecond: number;
  readonly p50: string;
  readonly p99: string;
  readonly before: Memory;
  readonly peak: Memory;
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

function memory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rssKb: kb('VmRSS'), anonKb: kb('RssAnon') };
}

function mb(kb: number): string {
  return `${(kb / 1024).toFixed(1)} MB`;
}

/** Runs wrk to its end; rejects when it cannot run or reports errors or non-2xx answers. */
function wrk(url: string, extraArgs: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${DURATION_S}s`, '--latency', ...extraArgs, url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (error) =>
      reject(new Error(`cannot run wrk (${error.message}): apt-get install wrk, or bash scripts/setup.sh`)),
    );
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`wrk exited with ${String(code)}: ${output}`));
      else if (/Non-2xx or 3xx responses/.test(output)) reject(new Error(`some answers were not 200:\n${output}`));
      else resolve(output);
    });
  });
}

async function load(label: string, pid: number, url: string, extraArgs: readonly string[]): Promise<Load> {
  const before = memory(pid);
  let peak = before;
  const sampler = setInterval(() => {
    const now = memory(pid);
    peak = { rssKb: Math.max(peak.rssKb, now.rssKb), anonKb: Math.max(peak.anonKb, now.anonKb) };
  }, SAMPLE_EVERY_MS);
  process.stderr.write(`bench: ${label}: wrk for ${DURATION_S} s\n`);
  const output = await wrk(url, extraArgs).finally(() => clearInterval(sampler));
  const requestsPerSecond = Number(/^Requests\/sec:\s+([\d.]+)/m.exec(output)?.[1]);
  const percentile = (p: number): string => new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(output)?.[1] ?? '?';
  if (!Number.isFinite(requestsPerSecond)) fail(`no requests per second in wrk's output:\n${output}`);
  return { label, requestsPerSecond, p50: percentile(50), p99: percentile(99), before, peak };
}

async function settledPid(run: Run): Promise<number> {
  const pid = await run.pid();
  await sleep(SETTLE_MS);
  return pid;
}

async function idleWithoutProbe(): Promise<Memory> {
  const run = startDrainInit(['--probe-port', '0', ...WORKER]);
  try {
    await waitFor(() => run.stderr().includes('"started child"') || undefined, 'drain-init without the probe');
    return memory(await settledPid(run));
  } finally {
    await killRun(run);
  }
}

async function main(): Promise<void> {
  const { run, port } = await startWithProbe(WORKER);
  let loads: Load[];
  let idleWithProbe: Memory;
  try {
    const pid = await settledPid(run);
    idleWithProbe = memory(pid);
    const url = `http://127.0.0.1:${port}/livez`;
    loads = [
      await load('/livez, connections kept alive', pid, url, []),
      await load('/livez, a new connection per request', pid, url, ['-H', 'Connection: close']),
    ];
  } finally {
    await killRun(run);
  }
  const idleWithout = await idleWithoutProbe();

  const [load1, load5] = loadavg();
  console.log(`\n### Probe endpoint: drain-init as PID 1, wrk -t1 -c${CONNECTIONS} -d${DURATION_S}s, one run`);
  console.log(
    `(${availableParallelism()} CPUs, load average ${load1?.toFixed(2)} / ${load5?.toFixed(2)}, Node ${process.version})\n`,
  );
  console.log('| Load | Requests/s | Latency p50 | Latency p99 | VmRSS before → peak | RssAnon before → peak |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const entry of loads) {
    console.log(
      `| ${entry.label} | ${Math.round(entry.requestsPerSecond).toLocaleString('en-US')} | ${entry.p50} | ${entry.p99} | ` +
        `${mb(entry.before.rssKb)} → ${mb(entry.peak.rssKb)} | ${mb(entry.before.anonKb)} → ${mb(entry.peak.anonKb)} |`,
    );
  }
  console.log('\n| Idle, 3 s after start | VmRSS | RssAnon |');
  console.log('| --- | ---: | ---: |');
  console.log(`| with the probe endpoint (default) | ${mb(idleWithProbe.rssKb)} | ${mb(idleWithProbe.anonKb)} |`);
  console.log(`| --probe-port 0 | ${mb(idleWithout.rssKb)} | ${mb(idleWithout.anonKb)} |`);
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
