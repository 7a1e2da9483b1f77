/**
 * Benchmark of the Redis heartbeat, in two phases against a redis-server on a free loopback port.
 *
 * 1. Beats: 10,000 beats of the instance record at a 1 ms interval. Prints the Redis commands per beat, from
 *    `INFO commandstats` deltas (the benchmark's own INFO calls left out), and the process's RSS and V8 heap after
 *    1,000 and 10,000 beats. At this rate V8 grows its young generation (not garbage that stays), so the heap used
 *    after a full GC is the figure that shows whether anything is retained.
 * 2. Outage: a recorder at a 10 ms heartbeat interval with an update() every 2 ms (state churn) while redis-server
 *    is stopped for 60 s (BENCH_OUTAGE_SECONDS=600 for the full 10 minutes). Every 5 s: RSS, V8 heap used after a
 *    forced GC and the reconnection attempts so far; then redis-server is started again on the same port and the
 *    record must come back with the last state. "flat" when the heap after GC grew by less than 1 MiB.
 *
 * Run with Node 24 (it strips the types): node scripts/bench/redis-beat.ts. The recorder is bundled from src/ with
 * esbuild into .bench/ first (the build emits no per-module JavaScript, only the bundled CLI).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { build } from 'esbuild';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { startRedis, type RedisServer } from '../../test/helpers/redis.ts';

type RecordModule = typeof import('../../src/record/recorder.ts') &
  Pick<typeof import('../../src/redis/connection.ts'), 'connectRedis'> &
  Pick<typeof import('../../src/redis/url.ts'), 'parseRedisUrl'> &
  Pick<typeof import('../../src/lib/clock.ts'), 'systemClock'>;
type InstanceRecorder = import('../../src/record/recorder.ts').InstanceRecorder;

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BEATS = 10_000;
const EARLY_BEATS = 1_000;
const INTERVAL_MS = 1;

const OUTAGE_SECONDS = Number(process.env.BENCH_OUTAGE_SECONDS ?? '60');
const OUTAGE_INTERVAL_MS = 10;
const OUTAGE_TTL_MS = 1_000;
const CHURN_EVERY_MS = 2;
const SAMPLE_EVERY_MS = 5_000;
/** drain-init's default --heartbeat-interval, and the outage the issue asks about. */
const DEFAULT_INTERVAL_MS = 10_000;
const ISSUE_OUTAGE_MS = 600_000;
const FLAT_LIMIT_BYTES = 1024 * 1024;
const OUTAGE_MSG = 'Redis unavailable; the worker runs on';
const RECOVERY_MSG = 'Redis available again';

type CommandCounts = Map<string, number>;

async function commandCounts(server: RedisServer): Promise<CommandCounts> {
  const counts: CommandCounts = new Map();
  for (const match of (await server.command('INFO', 'commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    counts.set(match[1] ?? '', Number(match[2]));
  }
  return counts;
}

function delta(before: CommandCounts, after: CommandCounts): CommandCounts {
  const changed: CommandCounts = new Map();
  for (const [name, calls] of after) {
    const grown = calls - (before.get(name) ?? 0);
    if (grown > 0 && name !== 'info') changed.set(name, grown);
  }
  return changed;
}

async function beatsSince(server: RedisServer, start: CommandCounts): Promise<number> {
  return delta(start, await commandCounts(server)).get('zadd') ?? 0;
}

async function waitForBeats(server: RedisServer, start: CommandCounts, beats: number): Promise<void> {
  while ((await beatsSince(server, start)) < beats) await sleep(20);
}

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

function sampleMemory(): { rss: number; heap: number } {
  const rss = process.memoryUsage.rss();
  collectGarbage();
  return { rss, heap: process.memoryUsage().heapUsed };
}

function memory(): string {
  const { rss, heap } = sampleMemory();
  return `RSS ${mib(rss)}, heap used after GC ${mib(heap)}`;
}

/** src/record/recorder.ts, connectRedis and their imports in one ES module; ioredis and pino stay imports of node_modules. */
async function loadRecorder(): Promise<RecordModule> {
  const outfile = join(ROOT, '.bench', 'redis-record.mjs');
  mkdirSync(join(ROOT, '.bench'), { recursive: true });
  await build({
    stdin: {
      contents: [
        "export * from './record/recorder.ts';",
        "export { connectRedis } from './redis/connection.ts';",
        "export { parseRedisUrl } from './redis/url.ts';",
        "export { systemClock } from './lib/clock.ts';",
      ].join(' '),
      resolveDir: join(ROOT, 'src'),
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    packages: 'external',
    logLevel: 'warning',
    outfile,
  });
  return (await import(pathToFileURL(outfile).href)) as RecordModule;
}

/**
 * ioredis' reconnection attempts, counted from its 'reconnecting' status event. The recorder does not expose its
 * client, so the bench wraps emit on the prototype of the one ioredis module the bundle imports too.
 */
let reconnections = 0;
const emit = Redis.prototype.emit;
Redis.prototype.emit = function (this: Redis, event: string | symbol, ...args: unknown[]): boolean {
  if (event === 'reconnecting') reconnections++;
  return emit.call(this, event, ...args);
};

async function untilTrue(probe: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<number> {
  const startedAt = performance.now();
  for (;;) {
    if (
      await Promise.resolve()
        .then(probe)
        .catch(() => false)
    )
      return performance.now() - startedAt;
    if (performance.now() - startedAt > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function answersPing(server: RedisServer): Promise<boolean> {
  return server.command('PING').then(
    (reply) => reply === 'PONG',
    () => false,
  );
}

async function beatPhase(
  server: RedisServer,
  { startInstanceRecorder, connectRedis, parseRedisUrl, systemClock }: RecordModule,
): Promise<void> {
  const idle = memory();
  const log = pino({ level: 'warn' }, pino.destination(2));
  const connection = connectRedis(parseRedisUrl(server.url), log, 'drain-init:bench', systemClock);
  const recorder = startInstanceRecorder(
    connection,
    { instanceId: 'bench', redisPrefix: 'drain-init', heartbeatIntervalMs: INTERVAL_MS, heartbeatTtlMs: 1_000 },
    { token: 'bench', beatEveryMs: INTERVAL_MS },
    log,
    { program: 'sidekiq', version: 'bench' },
    systemClock,
  );
  try {
    while ((await server.command('EXISTS', 'drain-init:instance:bench')) !== '1') await sleep(10);
    recorder.update({ state: 'running', childPid: 1, jobsInFlight: 25 });
    const start = await commandCounts(server);
    const startedAt = performance.now();

    await waitForBeats(server, start, EARLY_BEATS);
    const early = memory();
    await waitForBeats(server, start, BEATS);
    const seconds = (performance.now() - startedAt) / 1000;
    const late = memory();

    const commands = delta(start, await commandCounts(server));
    const beats = commands.get('zadd') ?? 0;
    const total = [...commands.values()].reduce((sum, calls) => sum + calls, 0);
    const breakdown = [...commands].map(([name, calls]) => `${name} ${(calls / beats).toFixed(2)}`).join(', ');
    process.stdout.write(
      [
        `redis-beat: ${beats} beats in ${seconds.toFixed(1)} s (${Math.round(beats / seconds)} beats/s at a ${INTERVAL_MS} ms interval)`,
        `commands per beat: ${(total / beats).toFixed(2)} (${breakdown})`,
        `memory before the recorder: ${idle}`,
        `memory after ${EARLY_BEATS} beats: ${early}`,
        `memory after ${beats} beats: ${late}`,
        '',
      ].join('\n'),
    );
  } finally {
    await recorder.close({ state: 'exited', lastExit: 'code 0' });
    connection.close();
  }
}

interface OutageSample {
  readonly seconds: number;
  readonly rss: number;
  readonly heap: number;
  readonly reconnections: number;
}

async function outagePhase(
  server: RedisServer,
  { startInstanceRecorder, connectRedis, parseRedisUrl, systemClock }: RecordModule,
): Promise<void> {
  // Only counts are kept: a logger that stored its lines would itself grow if the recorder logged per failure.
  const logCounts = new Map<string, number>();
  const log = pino(
    { level: 'info' },
    {
      write: (line: string) => {
        const { msg } = JSON.parse(line) as { msg: string };
        logCounts.set(msg, (logCounts.get(msg) ?? 0) + 1);
      },
    },
  );
  const id = 'bench-outage';
  const connection = connectRedis(parseRedisUrl(server.url), log, `drain-init:${id}`, systemClock);
  const recorder: InstanceRecorder = startInstanceRecorder(
    connection,
    {
      instanceId: id,
      redisPrefix: 'drain-init',
      heartbeatIntervalMs: OUTAGE_INTERVAL_MS,
      heartbeatTtlMs: OUTAGE_TTL_MS,
    },
    { token: 'bench-outage', beatEveryMs: OUTAGE_INTERVAL_MS },
    log,
    { program: 'sidekiq', version: 'bench' },
    systemClock,
  );
  const key = `drain-init:instance:${id}`;

  let updates = 0;
  let slowestUpdateMs = 0;
  let last = { jobsInFlight: 0, stopPlan: '' };
  const churn = setInterval(() => {
    updates++;
    last = { jobsInFlight: updates % 25, stopPlan: `quiet, then TERM after 25 s (churn ${updates})` };
    const startedAt = performance.now();
    recorder.update({ state: updates % 2 === 0 ? 'running' : 'quieting', deadlineInMs: 25_000, ...last });
    slowestUpdateMs = Math.max(slowestUpdateMs, performance.now() - startedAt);
  }, CHURN_EVERY_MS);

  const samples: OutageSample[] = [];
  let updatesDuringOutage = 0;
  let recoveryMs = 0;
  try {
    await untilTrue(async () => (await server.command('EXISTS', key)) === '1', 'the first record');
    await sleep(1_000);

    process.kill(server.pid(), 'SIGTERM');
    await untilTrue(async () => !(await answersPing(server)) && !recorder.connected, 'Redis to be down');
    reconnections = 0;
    slowestUpdateMs = 0;
    const updatesBefore = updates;
    const outageStart = performance.now();
    process.stdout.write(`\n| outage time | RSS | heap used after GC | reconnection attempts |\n|---|---|---|---|\n`);
    for (let due = 0; due <= OUTAGE_SECONDS * 1000; due += SAMPLE_EVERY_MS) {
      const wait = outageStart + due - performance.now();
      if (wait > 0) await sleep(wait);
      const { rss, heap } = sampleMemory();
      const sample = { seconds: Math.round((performance.now() - outageStart) / 1000), rss, heap, reconnections };
      samples.push(sample);
      process.stdout.write(`| ${sample.seconds} s | ${mib(rss)} | ${mib(heap)} | ${sample.reconnections} |\n`);
    }
    updatesDuringOutage = updates - updatesBefore;

    // The last state written during the outage must be the one the record shows once Redis is back.
    clearInterval(churn);
    const wanted = last;
    const restartedAt = performance.now();
    await server.restart();
    await untilTrue(async () => {
      const [jobs, plan] = (await server.call('HMGET', key, 'jobsInFlight', 'stopPlan')) as (string | null)[];
      return jobs === String(wanted.jobsInFlight) && plan === wanted.stopPlan;
    }, 'the record after the restart');
    recoveryMs = performance.now() - restartedAt;
  } finally {
    clearInterval(churn);
    await recorder.close({ state: 'exited', lastExit: 'code 0' });
    connection.close();
  }

  const first = samples[0];
  const final = samples.at(-1);
  if (first === undefined || final === undefined) throw new Error('no samples');
  const growth = final.heap - first.heap;
  const skippedBeats = Math.round((OUTAGE_SECONDS * 1000) / OUTAGE_INTERVAL_MS);
  const issueBeats = ISSUE_OUTAGE_MS / DEFAULT_INTERVAL_MS;
  process.stdout.write(
    [
      '',
      `verdict: ${growth < FLAT_LIMIT_BYTES ? 'flat' : 'GROWING'} (heap used after GC ${growth >= 0 ? '+' : ''}${(growth / 1024).toFixed(0)} KiB ` +
        `from the first outage sample to the last; RSS ${mib(first.rss)} -> ${mib(final.rss)}; limit +1 MiB)`,
      `record back ${(recoveryMs / 1000).toFixed(1)} s after redis-server was restarted, with the last state set during the outage`,
      `log lines: ${logCounts.get(OUTAGE_MSG) ?? 0} '${OUTAGE_MSG}', ${logCounts.get(RECOVERY_MSG) ?? 0} '${RECOVERY_MSG}'`,
      `update(): ${updatesDuringOutage} calls during the outage, the slowest ${slowestUpdateMs.toFixed(2)} ms`,
      `method: recorder at a ${OUTAGE_INTERVAL_MS} ms heartbeat interval, update() every ${CHURN_EVERY_MS} ms; redis-server stopped (SIGTERM) ` +
        `for ${OUTAGE_SECONDS} s, so ${skippedBeats} skipped beats, ${Math.round(skippedBeats / issueBeats)}x the ${issueBeats} beats a 10-minute outage ` +
        `skips at the default ${DEFAULT_INTERVAL_MS / 1000} s interval (BENCH_OUTAGE_SECONDS=600: ${ISSUE_OUTAGE_MS / OUTAGE_INTERVAL_MS} beats, ` +
        `${ISSUE_OUTAGE_MS / OUTAGE_INTERVAL_MS / issueBeats}x). Every ${SAMPLE_EVERY_MS / 1000} s: RSS, then V8 heap used after a forced full GC; ` +
        `reconnection attempts from ioredis' 'reconnecting' events.`,
      '',
    ].join('\n'),
  );
}

async function main(): Promise<void> {
  if (!Number.isFinite(OUTAGE_SECONDS) || OUTAGE_SECONDS < SAMPLE_EVERY_MS / 1000)
    throw new Error(`BENCH_OUTAGE_SECONDS must be at least ${SAMPLE_EVERY_MS / 1000}`);
  const recorderModule = await loadRecorder();
  const server = await startRedis();
  try {
    await beatPhase(server, recorderModule);
    await outagePhase(server, recorderModule);
  } finally {
    await server.stop();
  }
}

await main();
