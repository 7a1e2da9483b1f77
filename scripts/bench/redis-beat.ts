/**
 * Benchmark of the Redis heartbeat: 10,000 beats of the instance record at a 1 ms interval against a
 * redis-server on a free loopback port. Prints the Redis commands per beat, from `INFO commandstats`
 * deltas (the benchmark's own INFO calls left out), and the process's RSS and V8 heap after 1,000 and
 * 10,000 beats. At this rate V8 grows its young generation (not garbage that stays), so the heap used after
 * a full GC is the figure that shows whether anything is retained.
 *
 * Run with Node 24 (it strips the types) after `npm run build`: node scripts/bench/redis-beat.ts
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import type { RedisServer } from '../../test/helpers/redis.js';

// Node runs the helper's .ts source and the built recorder; tsc (without allowImportingTsExtensions) rejects a
// static '.ts' import, hence dynamic imports typed from the '.js' names tsc maps back to the same files.
const { startRedis }: typeof import('../../test/helpers/redis.js') = await import(new URL('../../test/helpers/redis.ts', import.meta.url).href);

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BEATS = 10_000;
const EARLY_BEATS = 1_000;
const INTERVAL_MS = 1;

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

function memory(): string {
  const rss = process.memoryUsage.rss();
  collectGarbage();
  return `RSS ${mib(rss)}, heap used after GC ${mib(process.memoryUsage().heapUsed)}`;
}

async function main(): Promise<void> {
  const built = `${ROOT}dist/redis/record.js`;
  if (!existsSync(built)) throw new Error('dist/redis/record.js is missing: run npm run build first');
  const { startInstanceRecorder }: typeof import('../../src/redis/record.js') = await import(built);

  const server = await startRedis();
  const idle = memory();
  const log = pino({ level: 'warn' }, pino.destination(2));
  const recorder = startInstanceRecorder(
    { redisUrl: server.url, instanceId: 'bench', redisPrefix: 'drain-init', heartbeatIntervalMs: INTERVAL_MS, heartbeatTtlMs: 1_000 },
    log,
    { program: 'sidekiq', version: 'bench' },
  );
  if (recorder === undefined) throw new Error('no recorder');
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
    await server.stop();
  }
}

await main();
