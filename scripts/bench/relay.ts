/**
 * Benchmark of the Redis relay (src/redis/relay.ts) and of drain-init's Redis endpoint built on it, against
 * redis-server straight, in one run, with redis-benchmark (Debian's, from redis-tools) on loopback:
 *   1. latency: one connection (-c 1), so that a request never queues behind another: p50 and p99 of
 *      PING_INLINE, PING_MBULK, GET, SET and LPUSH, and what the relay adds to them;
 *   2. throughput: 25 connections (-c 25), then 25 connections pipelining 16 requests each (-P 16): requests/s.
 * Direct and relayed runs alternate, each done RUNS times; the figures are the medians. Four relays:
 *   - the relay alone, in a Node process of its own with drain-init's V8 flags, with hooks as drain-init sets
 *     them (an observer on every command, BRPOP captured);
 *   - drain-init's own endpoint, drain-init as PID 1 of a PID namespace with a Redis URL and `--preset sidekiq`,
 *     its worker a shell that writes the URL drain-init gave it and sleeps; redis-benchmark connects there;
 *   - two yardsticks rather than relays of drain-init's, processes that copy bytes both ways and read none:
 *     what any process on the path costs before it does anything with the commands, in Node
 *     (scripts/bench/pipe-proxy.ts, with drain-init's V8 flags) and in C (socat).
 * VmRSS (from /proc, sampled every 100 ms) and CPU time (every thread's schedstat) are those of the relay's
 * process and of drain-init (socat's with the processes it forks per connection: their VmRSS summed, their CPU
 * time once they ended, to 10 ms): RSS idle, at its peak under each load and after the last, CPU time per request.
 *
 * Run with Node 24 (it strips the types) after `npm run build`: node scripts/bench/relay.ts. The relay alone is
 * bundled from src/ with esbuild into .bench/ first. Needs root (PID namespaces). Prints markdown tables on stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { build } from 'esbuild';
import { V8_FLAGS } from '../build/v8-flags.ts';
import { killRun, ROOT, startDrainInit, tempPath, waitFor } from '../../test/helpers/pid1.ts';
import { startRedis } from '../../test/helpers/redis.ts';
import { nodePipe, socat, startProxy, type ProxyArgv } from './proxies.ts';
import { cpuMs, median, reapedTreeCpuMs, sampleEvery, statusKb, treeKb } from './proc.ts';

const TESTS = ['PING_INLINE', 'PING_MBULK', 'GET', 'SET', 'LPUSH'];
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const LATENCY_REQUESTS = 30_000;
const LOAD_REQUESTS = 100_000;
const PIPELINED_REQUESTS = 500_000;
const CONNECTIONS = 25;
const PIPELINE = 16;
const SAMPLE_EVERY_MS = 100;
/** drain-init trims its resident set 2 s after its start: idle is measured after that. */
const IDLE_AFTER_MS = 3_000;

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

/** A relay redis-benchmark goes through. */
interface Relay {
  readonly name: string;
  readonly port: number;
  /** Its VmRSS now, in kB. */
  rssKb(): number;
  /** The CPU time it has used so far, in ms. */
  cpuMs(): number;
  stop(): Promise<void>;
}

/** A relay that is one process: its memory and CPU time are that process's. */
function oneProcess(pid: number | undefined): Pick<Relay, 'rssKb' | 'cpuMs'> {
  if (pid === undefined) fail('the relay has no pid');
  return { rssKb: () => statusKb(pid, 'VmRSS'), cpuMs: () => cpuMs(pid) };
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

async function startRelayAlone(redisPort: number): Promise<Relay> {
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
  const child: ChildProcess = spawn(process.execPath, [...V8_FLAGS, outfile, String(redisPort)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the relay exited (${String(code)})`)));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    name: 'relay alone',
    port: Number(line),
    ...oneProcess(child.pid),
    stop: async () => {
      child.stdin?.end();
      await exited;
    },
  };
}

/** drain-init as PID 1 with a stand-in worker that writes the Redis URL drain-init gave it, then sleeps. */
async function startEndpoint(redisUrl: string): Promise<Relay> {
  const urlFile = tempPath('worker-url');
  const run = startDrainInit(
    [
      '--preset',
      'sidekiq',
      '--instance-id',
      'bench',
      '--probe-port',
      '0',
      '--',
      'sh',
      '-c',
      'echo "$REDIS_URL" > "$URL_FILE"; exec sleep 3600',
    ],
    { env: { REDIS_URL: redisUrl, URL_FILE: urlFile } },
  );
  const workerUrl = await waitFor(
    () => (existsSync(urlFile) ? readFileSync(urlFile, 'utf8').trim() || undefined : undefined),
    'the worker URL',
  );
  const port = Number(new URL(workerUrl).port);
  if (workerUrl === redisUrl || port === 0) fail(`drain-init gave the worker no endpoint:\n${run.stderr()}`);
  return { name: "drain-init's endpoint", port, ...oneProcess(await run.pid()), stop: () => killRun(run) };
}

/** A yardstick proxy (scripts/bench/proxies.ts); `measured` reads its memory and CPU time. */
async function startYardstick(
  name: string,
  argv: ProxyArgv,
  redisPort: number,
  measured: (pid: number) => Pick<Relay, 'rssKb' | 'cpuMs'>,
): Promise<Relay> {
  const { proxy, port } = await startProxy(argv, redisPort);
  const exited = new Promise((resolve) => proxy.once('exit', resolve));
  return {
    name,
    port,
    ...measured(proxy.pid ?? fail(`${name} has no pid`)),
    stop: async () => {
      proxy.kill('SIGTERM');
      await exited;
    },
  };
}

/** Runs redis-benchmark to its end; its CSV rows. */
async function benchmark(port: number, args: readonly string[]): Promise<Row[]> {
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
  });
  const rows = output
    .split('\n')
    .slice(1)
    .filter((line) => line.startsWith('"'))
    .map((line) => {
      const cells = line.split(',').map((cell) => cell.replaceAll('"', ''));
      return { test: cells[0] ?? '', rps: Number(cells[1]), p50: Number(cells[4]), p99: Number(cells[6]) };
    });
  if (rows.length !== TESTS.length) fail(`redis-benchmark gave ${rows.length} rows:\n${output}`);
  return rows;
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

const mb = (kb: number): string => `${(kb / 1024).toFixed(1)} MB`;

interface Load {
  readonly name: string;
  readonly requests: number;
  readonly args: readonly string[];
}

/** One relay's figures: redis-benchmark's rows by load, its peak VmRSS by load, CPU µs per request by load and run. */
interface Through {
  readonly results: Map<string, Results>;
  readonly peakKb: Map<string, number>;
  readonly cpuPerRequest: Map<string, number[]>;
  idleKb: number;
  afterKb: number;
}

function printRelay(relay: Relay, direct: Map<string, Results>, through: Through): void {
  const load = (results: Map<string, Results>, name: string, test: string): number =>
    medianOf(results.get(name) as Results, test, 'rps');
  const latencyDirect = direct.get('latency') as Results;
  const latencyRelayed = through.results.get('latency') as Results;
  console.log(`\n#### redis-benchmark direct and through ${relay.name}, median of ${RUNS} runs\n`);
  console.log(
    '| Test | p50 direct | p50 relay | added p50 | p99 direct | p99 relay | added p99 | req/s direct | req/s relay | relay/direct | req/s -P 16 direct | req/s -P 16 relay | relay/direct |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const test of TESTS) {
    const p50 = [medianOf(latencyDirect, test, 'p50'), medianOf(latencyRelayed, test, 'p50')] as const;
    const p99 = [medianOf(latencyDirect, test, 'p99'), medianOf(latencyRelayed, test, 'p99')] as const;
    const rps = [load(direct, 'load', test), load(through.results, 'load', test)] as const;
    const piped = [load(direct, 'pipelined', test), load(through.results, 'pipelined', test)] as const;
    console.log(
      `| ${test} | ${ms(p50[0])} | ${ms(p50[1])} | ${ms(p50[1] - p50[0])} | ${ms(p99[0])} | ${ms(p99[1])} | ` +
        `${ms(p99[1] - p99[0])} | ${thousands(rps[0])} | ${thousands(rps[1])} | ${(rps[1] / rps[0]).toFixed(2)} | ` +
        `${thousands(piped[0])} | ${thousands(piped[1])} | ${(piped[1] / piped[0]).toFixed(2)} |`,
    );
  }
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const relays = [
    await startRelayAlone(redis.port),
    await startEndpoint(redis.url),
    await startYardstick('a Node pipe (a yardstick)', nodePipe(V8_FLAGS), redis.port, oneProcess),
    // socat forks a process per connection: their VmRSS summed while they run, their CPU time once they ended.
    await startYardstick('socat (a yardstick)', socat, redis.port, (pid) => ({
      rssKb: () => treeKb(pid, 'VmRSS'),
      cpuMs: () => reapedTreeCpuMs(pid),
    })),
  ];
  const loads: readonly Load[] = [
    { name: 'latency', requests: LATENCY_REQUESTS, args: ['-c', '1'] },
    { name: 'load', requests: LOAD_REQUESTS, args: ['-c', String(CONNECTIONS)] },
    { name: 'pipelined', requests: PIPELINED_REQUESTS, args: ['-c', String(CONNECTIONS), '-P', String(PIPELINE)] },
  ];
  const byLoad = <T>(make: () => T): Map<string, T> => new Map(loads.map((load) => [load.name, make()]));
  const direct = byLoad((): Results => new Map());
  const throughs = new Map<Relay, Through>(
    relays.map((relay) => [
      relay,
      {
        results: byLoad((): Results => new Map()),
        peakKb: byLoad(() => 0),
        cpuPerRequest: byLoad((): number[] => []),
        idleKb: 0,
        afterKb: 0,
      },
    ]),
  );
  try {
    await sleep(IDLE_AFTER_MS);
    for (const relay of relays) (throughs.get(relay) as Through).idleKb = relay.rssKb();
    for (let run = 0; run < RUNS; run++) {
      for (const load of loads) {
        process.stderr.write(`bench: run ${run + 1}/${RUNS}, ${load.name}\n`);
        const args = [...load.args, '-n', String(load.requests)];
        collect(direct.get(load.name) as Results, await benchmark(redis.port, args));
        for (const relay of relays) {
          const through = throughs.get(relay) as Through;
          const cpuBefore = relay.cpuMs();
          let peakKb = through.peakKb.get(load.name) ?? 0;
          // NaN when a process of socat's ended while it was read: that sample is skipped.
          const stop = sampleEvery(SAMPLE_EVERY_MS, () => (peakKb = Math.max(peakKb, relay.rssKb() || 0)));
          try {
            collect(through.results.get(load.name) as Results, await benchmark(relay.port, args));
          } finally {
            stop();
          }
          through.peakKb.set(load.name, peakKb);
          through.cpuPerRequest
            .get(load.name)
            ?.push(((relay.cpuMs() - cpuBefore) * 1000) / (load.requests * TESTS.length));
        }
      }
    }
    await sleep(IDLE_AFTER_MS);
    for (const relay of relays) (throughs.get(relay) as Through).afterKb = relay.rssKb();
  } finally {
    for (const relay of relays) await relay.stop();
    await redis.stop();
  }

  console.log(`\n### Redis relay and endpoint: redis-benchmark direct and through them, median of ${RUNS} runs`);
  console.log(
    `\nLatency with one connection (-c 1, -n ${LATENCY_REQUESTS}); throughput with ${CONNECTIONS} connections ` +
      `(-n ${LOAD_REQUESTS}) and ${CONNECTIONS} connections pipelining ${PIPELINE} (-P ${PIPELINE}, -n ${PIPELINED_REQUESTS}).`,
  );
  for (const relay of relays) printRelay(relay, direct, throughs.get(relay) as Through);
  console.log(
    `\n| Process | VmRSS idle | peak -c 1 | peak -c ${CONNECTIONS} | peak -c ${CONNECTIONS} -P ${PIPELINE} | ${IDLE_AFTER_MS / 1000} s after | CPU/request -c 1 | -c ${CONNECTIONS} | -c ${CONNECTIONS} -P ${PIPELINE} |`,
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const relay of relays) {
    const through = throughs.get(relay) as Through;
    const cells = [
      relay.name,
      mb(through.idleKb),
      ...loads.map((load) => mb(through.peakKb.get(load.name) ?? 0)),
      mb(through.afterKb),
      ...loads.map((load) => `${median(through.cpuPerRequest.get(load.name) ?? []).toFixed(1)} µs`),
    ];
    console.log(`| ${cells.join(' | ')} |`);
  }
}

await main();
