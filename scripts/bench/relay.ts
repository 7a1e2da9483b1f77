/**
 * Benchmark of the Redis relay (src/redis/relay.ts) against redis-server straight, in one run, with
 * redis-benchmark (Debian's, from redis-tools) on loopback:
 *   1. latency: one connection (-c 1), so that a request never queues behind another: p50 and p99 of
 *      PING_INLINE, PING_MBULK, GET, SET and LPUSH, and what the relay adds to them;
 *   2. throughput: 25 connections (-c 25), then 25 connections pipelining 16 requests each (-P 16): requests/s.
 * Direct and relayed runs alternate, each done RUNS times; the figures are the medians. The relay runs in a Node
 * process of its own, with hooks as drain-init sets them (an observer on every command, BRPOP captured), so its
 * VmRSS (from /proc, sampled every 100 ms) and its CPU time (utime + stime) are the relay's alone: RSS idle and at
 * its peak under each load, CPU time per request relayed under each load.
 *
 * Run with Node 24 (it strips the types): node scripts/bench/relay.ts. The relay is bundled from src/ with esbuild
 * into .bench/ first. Prints a markdown table on stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { startRedis } from '../../test/helpers/redis.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TESTS = ['PING_INLINE', 'PING_MBULK', 'GET', 'SET', 'LPUSH'];
const RUNS = 5;
const LATENCY_REQUESTS = 30_000;
const LOAD_REQUESTS = 100_000;
const PIPELINED_REQUESTS = 500_000;
const CONNECTIONS = 25;
const PIPELINE = 16;
const SAMPLE_EVERY_MS = 100;

/** The relay as drain-init runs it, in a process of its own: prints its port, runs until stdin closes. */
const RELAY_ENTRY = `
import { pino } from 'pino';
import { startRelay } from './relay.ts';
let observed = 0;
const relay = await startRelay({
  upstream: { host: '127.0.0.1', port: Number(process.argv[2]), tls: false },
  log: pino({ level: 'warn' }, pino.destination(2)),
  hooks: {
    capture: (name) => (name === 'BRPOP' ? 4096 : 0),
    observe: () => void observed++,
    takeover: () => undefined,
  },
});
process.stdout.write(relay.port + '\\n');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
`;

interface Row {
  readonly test: string;
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
}

type Results = Map<string, Row[]>;

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

async function startRelayProcess(redisPort: number): Promise<{ child: ChildProcess; port: number }> {
  const outfile = join(ROOT, '.bench', 'relay.mjs');
  mkdirSync(join(ROOT, '.bench'), { recursive: true });
  await build({
    stdin: { contents: RELAY_ENTRY, resolveDir: join(ROOT, 'src/redis'), loader: 'ts' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    packages: 'external',
    logLevel: 'warning',
    outfile,
  });
  const child = spawn(process.execPath, [outfile, String(redisPort)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the relay exited (${String(code)})`)));
  });
  return { child, port: Number(line) };
}

/** CPU time (user + system) the process has used, in ms (from /proc/<pid>/stat, at the kernel's 100 Hz tick). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssKb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
}

/** Runs redis-benchmark to its end; its CSV rows. Samples the relay's VmRSS meanwhile when given its pid. */
async function benchmark(
  port: number,
  args: readonly string[],
  relayPid?: number,
): Promise<{ rows: Row[]; peakKb: number; cpuMs: number }> {
  let peakKb = 0;
  const cpuBefore = relayPid === undefined ? 0 : cpuMs(relayPid);
  const sampler =
    relayPid === undefined
      ? undefined
      : setInterval(() => (peakKb = Math.max(peakKb, rssKb(relayPid))), SAMPLE_EVERY_MS);
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn('redis-benchmark', [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-t',
      TESTS.join(','),
      '--csv',
      ...args,
    ]);
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`redis-benchmark exited ${code}`))));
  }).finally(() => clearInterval(sampler));
  const rows = output
    .split('\n')
    .slice(1)
    .filter((line) => line.startsWith('"'))
    .map((line) => {
      const cells = line.split(',').map((cell) => cell.replaceAll('"', ''));
      return { test: cells[0] ?? '', rps: Number(cells[1]), p50: Number(cells[4]), p99: Number(cells[6]) };
    });
  if (rows.length !== TESTS.length) fail(`redis-benchmark gave ${rows.length} rows:\n${output}`);
  return { rows, peakKb, cpuMs: relayPid === undefined ? 0 : cpuMs(relayPid) - cpuBefore };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

function medianOf(results: Results, test: string, field: 'rps' | 'p50' | 'p99'): number {
  return median((results.get(test) ?? []).map((row) => row[field]));
}

function collect(into: Results, rows: readonly Row[]): void {
  for (const row of rows) into.set(row.test, [...(into.get(row.test) ?? []), row]);
}

function ms(value: number): string {
  return `${value.toFixed(3)} ms`;
}

function thousands(value: number): string {
  return `${Math.round(value / 1000)}k`;
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const { child, port: relayPort } = await startRelayProcess(redis.port);
  const relayPid = child.pid ?? fail('the relay has no pid');
  await sleep(500);
  const idleKb = rssKb(relayPid);
  const loads = [
    { name: 'latency', requests: LATENCY_REQUESTS, args: ['-c', '1'] },
    { name: 'load', requests: LOAD_REQUESTS, args: ['-c', String(CONNECTIONS)] },
    { name: 'pipelined', requests: PIPELINED_REQUESTS, args: ['-c', String(CONNECTIONS), '-P', String(PIPELINE)] },
  ];
  const direct = new Map(loads.map((load) => [load.name, new Map() as Results]));
  const relayed = new Map(loads.map((load) => [load.name, new Map() as Results]));
  const peakKb = new Map(loads.map((load) => [load.name, 0]));
  /** CPU µs per request relayed, one figure per run. */
  const cpuPerRequest = new Map(loads.map((load) => [load.name, [] as number[]]));
  try {
    for (let run = 0; run < RUNS; run++) {
      for (const load of loads) {
        process.stderr.write(`bench: run ${run + 1}/${RUNS}, ${load.name}\n`);
        const args = [...load.args, '-n', String(load.requests)];
        collect(direct.get(load.name) as Results, (await benchmark(redis.port, args)).rows);
        const through = await benchmark(relayPort, args, relayPid);
        collect(relayed.get(load.name) as Results, through.rows);
        peakKb.set(load.name, Math.max(peakKb.get(load.name) ?? 0, through.peakKb));
        cpuPerRequest.get(load.name)?.push((through.cpuMs * 1000) / (load.requests * TESTS.length));
      }
    }
  } finally {
    child.stdin?.end();
    await redis.stop();
  }

  const latencyDirect = direct.get('latency') as Results;
  const latencyRelayed = relayed.get('latency') as Results;
  const load = (results: Map<string, Results>, name: string, test: string): number =>
    medianOf(results.get(name) as Results, test, 'rps');
  console.log(`\n### Redis relay: redis-benchmark direct and through the relay, median of ${RUNS} runs`);
  console.log(
    `\nLatency with one connection (-c 1, -n ${LATENCY_REQUESTS}); throughput with ${CONNECTIONS} connections ` +
      `(-n ${LOAD_REQUESTS}) and ${CONNECTIONS} connections pipelining ${PIPELINE} (-P ${PIPELINE}, -n ${PIPELINED_REQUESTS}).\n`,
  );
  console.log(
    '| Test | p50 direct | p50 relay | added p50 | p99 direct | p99 relay | added p99 | req/s direct | req/s relay | relay/direct | req/s -P 16 direct | req/s -P 16 relay | relay/direct |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const test of TESTS) {
    const p50 = [medianOf(latencyDirect, test, 'p50'), medianOf(latencyRelayed, test, 'p50')] as const;
    const p99 = [medianOf(latencyDirect, test, 'p99'), medianOf(latencyRelayed, test, 'p99')] as const;
    const rps = [load(direct, 'load', test), load(relayed, 'load', test)] as const;
    const piped = [load(direct, 'pipelined', test), load(relayed, 'pipelined', test)] as const;
    console.log(
      `| ${test} | ${ms(p50[0])} | ${ms(p50[1])} | ${ms(p50[1] - p50[0])} | ${ms(p99[0])} | ${ms(p99[1])} | ` +
        `${ms(p99[1] - p99[0])} | ${thousands(rps[0])} | ${thousands(rps[1])} | ${(rps[1] / rps[0]).toFixed(2)} | ` +
        `${thousands(piped[0])} | ${thousands(piped[1])} | ${(piped[1] / piped[0]).toFixed(2)} |`,
    );
  }
  const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`;
  const cpu = (name: string): string => `${median(cpuPerRequest.get(name) ?? []).toFixed(1)} µs`;
  const peak = (name: string): string => mb(peakKb.get(name) ?? 0);
  console.log(`\n| Relay process | idle | -c 1 | -c ${CONNECTIONS} | -c ${CONNECTIONS} -P ${PIPELINE} |`);
  console.log('| --- | ---: | ---: | ---: | ---: |');
  console.log(
    `| VmRSS (peak under load) | ${mb(idleKb)} | ${peak('latency')} | ${peak('load')} | ${peak('pipelined')} |`,
  );
  console.log(`| CPU time per request (user + system) | | ${cpu('latency')} | ${cpu('load')} | ${cpu('pipelined')} |`);
}

await main();
