/**
 * Benchmark of drain-init under repeated Redis faults: its memory (RSS) and its log over a run of N minutes
 * (default 10, `--minutes N`), one round of faults a minute, against real redis-servers on loopback.
 *
 * drain-init runs as PID 1 (--preset sidekiq, a worker that never registers, so its watcher reads this
 * host's Sidekiq processes every 250 ms) with a fake Sidekiq process of its host whose work hash holds a
 * 10 MB value. Each round, on the primary drain-init uses:
 *   t=0 s   a dead peer's record of 5,000 junk entries, another dead peer's record with a well-formed 10 MB
 *           job, and drain-init's own keys of another type (the registry, the fleet stops and their count,
 *           the job deaths); the fake process re-seeded
 *   t=20 s  the keys of another type deleted
 *   t=35 s  the primary demoted: REPLICAOF of a second server (its data goes with it)
 *   t=45 s  promoted again: REPLICAOF NO ONE
 *   t=48 s  a password set (CONFIG SET requirepass) and every client killed
 *   t=55 s  the password removed
 * Prints drain-init's VmRSS at start, after each minute and at the end, and the log lines (and warnings) of each
 * round, as a markdown table on stdout; progress on stderr.
 *
 * Run with Node 24 (it strips the types) after `npm run build`: node scripts/bench/redis-faults.ts [--minutes N].
 * Needs root (PID namespaces) and redis-server.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { FIXTURES, startDrainInit, tempPath, type Run } from '../../test/helpers/pid1.ts';
import { startRedis, type RedisServer } from '../../test/helpers/redis.ts';

const ROUND_MS = 60_000;
const PASSWORD = 'fault-pa55';
const HOST = 'faults-host';
const IDENTITY = `${HOST}:4242:abcdef012345`;
const TEN_MB = 10 * 1_048_576;

function minutesArg(): number {
  const at = process.argv.indexOf('--minutes');
  const minutes = at === -1 ? 10 : Number(process.argv[at + 1]);
  if (!Number.isFinite(minutes) || minutes < 1) throw new Error('--minutes takes a whole number of minutes, 1 or more');
  return Math.floor(minutes);
}

function jobString(jid: string, filler: string): string {
  return `{"retry":true,"queue":"default","args":[1${filler}],"class":"SleepJob","jid":"${jid}","created_at":1795325608.1}`;
}

/** The faults of t=0: junk and huge records of dead peers, keys of another type, the fake process. */
function seed(round: number): (string | number)[][] {
  const junk = Array.from({ length: 5_000 }, (_, index) => [`junk-${index}`, `{"not":"a job ${index}"`]).flat();
  const filler = `,"${'x'.repeat(TEN_MB)}"`;
  const bigJob = JSON.stringify({ queue: 'default', payload: jobString('fake-big', filler), process: 'gone:1' });
  const info = JSON.stringify({ hostname: HOST, pid: 4242, tag: '', concurrency: 1, queues: ['default'] });
  const work = JSON.stringify({ queue: 'default', payload: jobString('w', filler), run_at: 1 });
  return [
    ['HSET', `drain-init:jobs:junk-${round}`, ...junk],
    ['HSET', `drain-init:jobs:big-${round}`, 'fake-big', bigJob],
    ['HSET', 'drain-init:job-records', `junk-${round}`, 'dead', `big-${round}`, 'dead'],
    ['SADD', 'processes', IDENTITY],
    ['HSET', IDENTITY, 'info', info, 'busy', '1', 'beat', String(Date.now() / 1000), 'quiet', 'false'],
    ['HSET', `${IDENTITY}:work`, 'tid', work],
    ...WRONG_TYPES.map((key) => ['SET', key, 'x']),
  ];
}

const WRONG_TYPES = ['drain-init:instances', 'drain-init:stops', 'drain-init:job-deaths'];
const WRONG_HASH = 'drain-init:stops-cut';

function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

function mb(kb: number): string {
  return (kb / 1024).toFixed(1);
}

interface Round {
  readonly minute: number;
  readonly rssKb: number;
  readonly lines: number;
  readonly warnings: number;
  readonly messages: Map<string, number>;
}

function linesOf(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

async function at(startMs: number, offsetMs: number): Promise<void> {
  const wait = startMs + offsetMs - Date.now();
  if (wait > 0) await sleep(wait);
}

/** One command to a server that may ask for a password now. */
function command(server: RedisServer, locked: boolean, ...args: (string | number)[]): Promise<unknown> {
  return locked ? server.pipeline([['AUTH', PASSWORD], args]) : server.call(...args);
}

async function round(primary: RedisServer, other: RedisServer, index: number): Promise<void> {
  const start = Date.now();
  await primary.pipeline([...seed(index), ['HSET', WRONG_HASH, 'f', 'v']]);
  await at(start, 20_000);
  await primary.call('DEL', ...WRONG_TYPES, WRONG_HASH);
  await at(start, 35_000);
  await primary.call('REPLICAOF', '127.0.0.1', String(other.port));
  await at(start, 45_000);
  await primary.call('REPLICAOF', 'NO', 'ONE');
  await at(start, 48_000);
  await primary.pipeline([
    ['CONFIG', 'SET', 'requirepass', PASSWORD],
    ['CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes'],
  ]);
  await at(start, 55_000);
  await command(primary, true, 'CONFIG', 'SET', 'requirepass', '');
  await at(start, ROUND_MS);
}

async function main(): Promise<void> {
  const minutes = minutesArg();
  const [primary, other] = await Promise.all([startRedis(), startRedis()]);
  let run: Run | undefined;
  try {
    const file = tempPath('signals');
    run = startDrainInit(
      [
        '--preset',
        'sidekiq',
        '--grace-period',
        '60s',
        '--instance-id',
        'faults',
        '--heartbeat-interval',
        '1s',
        '--probe-port',
        '0',
        '--',
        `${FIXTURES}recorder.py`,
        file,
      ],
      { env: { DRAIN_INIT_REDIS_URL: primary.url, DYNO: HOST } },
    );
    const pid = await run.pid();
    await sleep(3_000);
    const rssStart = rssKb(pid);
    process.stderr.write(`drain-init pid ${pid}, RSS ${mb(rssStart)} MB at start; ${minutes} rounds of 1 minute\n`);
    const rounds: Round[] = [];
    let seen = linesOf(run.stderr()).length;
    for (let minute = 1; minute <= minutes; minute++) {
      await round(primary, other, minute);
      const all = linesOf(run.stderr());
      const these = all.slice(seen);
      seen = all.length;
      const messages = new Map<string, number>();
      for (const line of these) messages.set(String(line.msg), (messages.get(String(line.msg)) ?? 0) + 1);
      const result = {
        minute,
        rssKb: rssKb(pid),
        lines: these.length,
        warnings: these.filter((line) => Number(line.level) >= 40).length,
        messages,
      };
      rounds.push(result);
      process.stderr.write(
        `minute ${minute}: RSS ${mb(result.rssKb)} MB, ${result.lines} log lines (${result.warnings} warnings)\n`,
      );
    }
    const rssEnd = rssKb(pid);
    const alive = run.process.exitCode === null;
    console.log(`| Minute | drain-init VmRSS (MB) | Log lines in the round | of them warnings |`);
    console.log(`| ---: | ---: | ---: | ---: |`);
    console.log(`| start | ${mb(rssStart)} | | |`);
    for (const result of rounds)
      console.log(`| ${result.minute} | ${mb(result.rssKb)} | ${result.lines} | ${result.warnings} |`);
    console.log('');
    console.log(
      `RSS ${mb(rssStart)} MB at start, ${mb(rssEnd)} MB at the end (${minutes} min); the worker ${alive ? 'ran throughout' : 'did NOT run throughout'}.`,
    );
    const last = rounds.at(-1);
    if (last !== undefined) {
      console.log('');
      console.log(`Lines of round ${last.minute}, by message:`);
      for (const [message, count] of [...last.messages].sort((a, b) => b[1] - a[1]))
        console.log(`- ${count} × ${message}`);
    }
  } finally {
    if (run !== undefined) {
      const pid = await run.pid().catch(() => undefined);
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
      await run.done;
    }
    await Promise.all([primary.stop(), other.stop()]);
  }
}

await main();
