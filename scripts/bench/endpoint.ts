/**
 * Benchmark of drain-init's Redis endpoint with a real Sidekiq 6.4.1 (-c 10, real redis-server), against tini and
 * drain-init with its heartbeat mirror alone (--redis-endpoint off), the inits as PID 1 of their own PID
 * namespace, each with a redis-server of its own. In each of ROUNDS rounds every contender is started, then each
 * phase is run for all of them in turn, the others idle meanwhile:
 *   1. idle cost: the Redis commands per second of an idle worker under each init (INFO commandstats over
 *      IDLE_MS, all at once, the commands a script runs counted as Redis counts them, INFO and CONFIG left out);
 *   2. pick-up: ms from the push of one job to its start, the worker waiting (PICKUPS pushes, spread over the
 *      BRPOP's 2 s timeout), from the job's start marker (Ruby's clock, the same epoch);
 *   3. throughput: after a warm-up drain of WARMUP_JOBS, DRAINS drains of DRAIN_JOBS no-op jobs pushed in one
 *      LPUSH to the waiting worker, the contenders taking turns: jobs/s from the push to the start of the last
 *      job (a SleepJob of 0 s, fetched last), the CPU time the init, redis-server and the worker spent per job
 *      meanwhile (every thread's schedstat), how often the worker's threads went to sleep per job (voluntary
 *      context switches), and the init's peak VmRSS after the drains (VmHWM, the warm-up included). A drain's
 *      ratio is to tini's drain of the same turn: one measured seconds apart, not minutes.
 *
 * Two more rows give the floor of any relay on the worker's Redis path: tini with the worker's Redis URL
 * pointing at a proxy that only pipes bytes (scripts/bench/pipe-proxy.ts, in Node; and socat, in C), the
 * proxy's CPU counted as the init's.
 *
 * BENCH_EXTRA=label=path adds drain-init with its endpoint from another build (path: its bin/drain-init), to
 * compare a change in the same run.
 *
 * Run with Node 24 (it strips the types) after `npm run build`: node scripts/bench/endpoint.ts. Needs root (PID
 * namespaces), redis-server, sidekiq, tini and socat. Prints a markdown table on stdout, progress on stderr.
 */
import type { ChildProcess } from 'node:child_process';
import { killRun, startDrainInit, startInit, type Run } from '../../test/helpers/pid1.ts';
import { startRedis, type RedisServer } from '../../test/helpers/redis.ts';
import {
  makeMarkerDir,
  markerRuns,
  nowSeconds,
  pickUpMs,
  removeMarkerDir,
  sidekiqCommand,
  sidekiqEnv,
  sidekiqJob,
  waitForMarker,
  waitForSidekiqRegistered,
} from '../../test/helpers/sidekiq.ts';
import { nodePipe, socat, startProxy, type ProxyArgv } from './proxies.ts';
import { cpuMs, median, percentile, processNamed, sleepCount, statusKb, treeCpuMs, treeKb } from './proc.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = 10;
const DRAIN_JOBS = 5_000;
/** Timed drains of DRAIN_JOBS per contender and round. */
const DRAINS = Number(process.env.BENCH_DRAINS ?? 5);
const WARMUP_JOBS = 10_000;
const PICKUPS = 10;
const IDLE_MS = 10_000;
/** After the worker registered: its threads are all in their fetch, drain-init has claimed its record. */
const SETTLE_MS = 3_000;
const SIDEKIQ = sidekiqCommand({ concurrency: CONCURRENCY, timeoutS: 3 });
const DRAIN_INIT_ARGS = ['--instance-id', 'bench', '--probe-port', '0'];

interface Contender {
  readonly name: string;
  readonly start: (env: Record<string, string>) => Run;
  /** A proxy the worker's Redis URL points at. */
  readonly proxy?: ProxyArgv;
}

const drainInit = (args: readonly string[]) => (env: Record<string, string>) =>
  startDrainInit([...DRAIN_INIT_ARGS, ...args, '--', ...SIDEKIQ], { env });

/** BENCH_EXTRA=label=path: one more drain-init with its endpoint, another build's bin/drain-init (before a change). */
const EXTRA = /^([^=]+)=(.+)$/.exec(process.env.BENCH_EXTRA ?? '');

const tini = (env: Record<string, string>): Run => startInit(['tini', '--', ...SIDEKIQ], { env });

const CONTENDERS: readonly Contender[] = [
  { name: 'tini', start: tini },
  {
    name: 'tini, a Node proxy that only pipes bytes',
    start: tini,
    proxy: nodePipe(),
  },
  {
    name: 'tini, socat as that proxy',
    start: tini,
    proxy: socat,
  },
  { name: 'drain-init, heartbeat mirror alone', start: drainInit(['--redis-endpoint', 'off']) },
  ...(EXTRA === null
    ? []
    : [
        {
          name: `drain-init, Redis endpoint, ${EXTRA[1]}`,
          start: (env: Record<string, string>) =>
            startInit([EXTRA[2] as string, ...DRAIN_INIT_ARGS, '--', ...SIDEKIQ], { env }),
        },
      ]),
  { name: 'drain-init, Redis endpoint', start: drainInit([]) },
];

/** One timed drain of DRAIN_JOBS. */
interface Drain {
  readonly jobsPerSecond: number;
  /** µs of CPU per job drained: the init's (a proxy's added), redis-server's and the worker's. */
  readonly initCpuUs: number;
  readonly redisCpuUs: number;
  readonly workerCpuUs: number;
  /** The worker's threads' sleeps (voluntary context switches) per job: each one a wait for a reply. */
  readonly workerSleeps: number;
}

/** What one round measured of one contender. */
interface Measure {
  readonly drains: readonly Drain[];
  /** The init's peak VmRSS (VmHWM) after the drains, in MB; a proxy's, its children's included, added. */
  readonly initPeakMb: number;
  readonly pickUpsMs: readonly number[];
  /** Commands per second while idle, by command. */
  readonly idle: ReadonlyMap<string, number>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** calls per command from INFO commandstats, INFO and CONFIG (the benchmark's own) left out. */
async function commandCalls(redis: RedisServer): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const match of (await redis.command('INFO', 'commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const name = match[1] ?? '';
    if (!/^(info|config)\b/.test(name)) calls.set(name, Number(match[2]));
  }
  return calls;
}

/** Pushes `count` jobs in one LPUSH, NoopJobs but the last fetched, a SleepJob of 0 s; jobs/s until that one starts. */
async function drain(redis: RedisServer, markerDir: string, count: number, tag: string): Promise<number> {
  const noops = Array.from({ length: count - 1 }, () => sidekiqJob({ jobClass: 'NoopJob', args: [] }).payload);
  const last = sidekiqJob({ args: [0, tag] });
  await redis.call('SADD', 'queues', 'default');
  const pushed = nowSeconds();
  // LPUSH puts its last argument at the head: BRPOP takes it last.
  await redis.call('LPUSH', 'queue:default', ...noops, last.payload);
  await waitForMarker(markerDir, last.jid, 'started', 120_000);
  const started = markerRuns(markerDir, 'started').get(last.jid)?.[0]?.at ?? Number.NaN;
  return count / (started - pushed);
}

/** A contender running: its Redis, its init and worker (and proxy), ready for the phases of a round. */
interface Running {
  readonly contender: Contender;
  readonly redis: RedisServer;
  readonly markerDir: string;
  readonly run: Run;
  readonly proxy: ChildProcess | undefined;
  readonly initPid: number;
  readonly workerPid: number;
  readonly progress: (line: string) => void;
}

async function start(contender: Contender, round: number): Promise<Running> {
  const redis = await startRedis();
  const markerDir = makeMarkerDir();
  const hop = contender.proxy === undefined ? undefined : await startProxy(contender.proxy, redis.port);
  const redisUrl = hop === undefined ? redis.url : `redis://127.0.0.1:${hop.port}/0`;
  const run = contender.start(sidekiqEnv({ redisUrl, markerDir, logLevel: 'warn' }));
  const progress = (line: string): void => void process.stderr.write(`round ${round}, ${contender.name}: ${line}\n`);
  const running = { contender, redis, markerDir, run, proxy: hop?.proxy, progress };
  try {
    await waitForSidekiqRegistered(redis, { timeoutMs: 60_000 });
    const initPid = await run.pid();
    const workerPid = processNamed(initPid, 'sidekiq');
    if (workerPid === undefined) throw new Error('no sidekiq process under the init');
    return { ...running, initPid, workerPid };
  } catch (error) {
    await stop(running);
    throw error;
  }
}

async function stop({ run, proxy, markerDir, redis }: Pick<Running, 'run' | 'proxy' | 'markerDir' | 'redis'>) {
  await killRun(run);
  proxy?.kill('SIGKILL');
  removeMarkerDir(markerDir);
  await redis.stop();
}

/** CPU of the init and of its proxy, if any, in ms. */
function hopCpuMs({ initPid, proxy }: Running): number {
  return cpuMs(initPid) + (proxy?.pid === undefined ? 0 : treeCpuMs(proxy.pid));
}

/** One timed drain of DRAIN_JOBS, with what the init, Redis and the worker spent on it. */
async function timedDrain(running: Running, trial: number): Promise<Drain> {
  const { redis, markerDir, workerPid } = running;
  const initBefore = hopCpuMs(running);
  const redisBefore = cpuMs(redis.pid());
  const workerBefore = { cpuMs: cpuMs(workerPid), sleeps: sleepCount(workerPid) };
  const jobsPerSecond = await drain(redis, markerDir, DRAIN_JOBS, `drain-${trial}`);
  const perJob = (ms: number): number => (ms * 1000) / DRAIN_JOBS;
  const result = {
    jobsPerSecond,
    initCpuUs: perJob(hopCpuMs(running) - initBefore),
    redisCpuUs: perJob(cpuMs(redis.pid()) - redisBefore),
    workerCpuUs: perJob(cpuMs(workerPid) - workerBefore.cpuMs),
    workerSleeps: (sleepCount(workerPid) - workerBefore.sleeps) / DRAIN_JOBS,
  };
  running.progress(
    `drain ${trial}: ${jobsPerSecond.toFixed(0)} jobs/s, init ${result.initCpuUs.toFixed(0)} µs CPU/job, worker ${result.workerCpuUs.toFixed(0)} µs and ${result.workerSleeps.toFixed(2)} sleeps/job`,
  );
  return result;
}

/**
 * One round: every contender started, each with its own redis-server, then each phase run for all of them, the
 * drains taking turns (the first to go moves on by one each time), so that the host's drifts fall on all alike.
 */
async function measureRound(round: number): Promise<Map<Contender, Measure>> {
  const started: Running[] = [];
  try {
    for (const contender of CONTENDERS) started.push(await start(contender, round));
    await sleep(SETTLE_MS);

    await Promise.all(started.map(({ redis }) => redis.call('CONFIG', 'RESETSTAT')));
    await sleep(IDLE_MS);
    const idle = new Map<Running, Map<string, number>>();
    for (const running of started) {
      const calls = await commandCalls(running.redis);
      idle.set(running, new Map([...calls].map(([name, count]) => [name, count / (IDLE_MS / 1000)])));
      running.progress(
        `idle: ${([...calls.values()].reduce((sum, count) => sum + count, 0) / (IDLE_MS / 1000)).toFixed(1)} commands/s`,
      );
    }

    const pickUpsMs = new Map<Running, number[]>(started.map((running) => [running, []]));
    for (let trial = 0; trial < PICKUPS; trial++) {
      for (const running of started) {
        // Spread over the fetch's 2 s timeout: a push lands early, late and in the middle of a BRPOP.
        await sleep(250 + ((trial * 390) % 1700));
        pickUpsMs.get(running)?.push(await pickUpMs(running.redis, running.markerDir, `pick-up-${trial}`));
      }
    }
    for (const [running, times] of pickUpsMs) running.progress(`pick-up p50 ${median(times).toFixed(2)} ms`);

    for (const running of started) await drain(running.redis, running.markerDir, WARMUP_JOBS, 'warm-up');
    await sleep(1_000);
    const drains = new Map<Running, Drain[]>(started.map((running) => [running, []]));
    for (let trial = 0; trial < DRAINS; trial++) {
      for (let turn = 0; turn < started.length; turn++) {
        const running = started[(trial + turn) % started.length] as Running;
        drains.get(running)?.push(await timedDrain(running, trial));
      }
    }

    return new Map(
      started.map((running) => [
        running.contender,
        {
          drains: drains.get(running) ?? [],
          initPeakMb:
            (statusKb(running.initPid, 'VmHWM') +
              (running.proxy?.pid === undefined ? 0 : treeKb(running.proxy.pid, 'VmHWM'))) /
            1024,
          pickUpsMs: pickUpsMs.get(running) ?? [],
          idle: idle.get(running) ?? new Map(),
        },
      ]),
    );
  } finally {
    for (const running of started) await stop(running);
  }
}

const results = new Map<Contender, Measure[]>(CONTENDERS.map((contender) => [contender, []]));
/** Each drain's throughput over tini's in the same turn of the same round. */
const ratios = new Map<Contender, number[]>(CONTENDERS.map((contender) => [contender, []]));
for (let round = 1; round <= ROUNDS; round++) {
  const inRound = await measureRound(round);
  const tini = inRound.get(CONTENDERS[0] as Contender) as Measure;
  for (const [contender, result] of inRound) {
    results.get(contender)?.push(result);
    ratios
      .get(contender)
      ?.push(
        ...result.drains.map((drained, trial) => drained.jobsPerSecond / (tini.drains[trial]?.jobsPerSecond ?? NaN)),
      );
  }
}

const range = (values: readonly number[], digits: number): string => {
  const low = Math.min(...values).toFixed(digits);
  const high = Math.max(...values).toFixed(digits);
  return low === high ? low : `${low}–${high}`;
};
/** The median and the middle half (25th to 75th percentile). */
const spread = (values: readonly number[], digits: number, unit = ''): string =>
  `${median(values).toFixed(digits)}${unit} (${percentile(values, 25).toFixed(digits)}–${percentile(values, 75).toFixed(digits)})`;
const rows = CONTENDERS.map((contender) => {
  const measures = results.get(contender) ?? [];
  const drains = measures.flatMap((result) => result.drains);
  const ofDrains = (pick: (drained: Drain) => number) => drains.map(pick);
  const pickUps = measures.flatMap((result) => result.pickUpsMs);
  const idle = measures.map((result) => [...result.idle.values()].reduce((sum, rate) => sum + rate, 0));
  const cells = [
    contender.name,
    spread(
      ofDrains((drained) => drained.jobsPerSecond),
      0,
    ),
    spread(ratios.get(contender) ?? [], 2),
    spread(
      ofDrains((drained) => drained.initCpuUs),
      0,
      ' µs',
    ),
    range(
      measures.map((result) => result.initPeakMb),
      1,
    ) + ' MB',
    spread(
      ofDrains((drained) => drained.redisCpuUs),
      0,
      ' µs',
    ),
    spread(
      ofDrains((drained) => drained.workerCpuUs),
      0,
      ' µs',
    ),
    spread(
      ofDrains((drained) => drained.workerSleeps),
      2,
    ),
    `${median(pickUps).toFixed(2)} ms`,
    `${percentile(pickUps, 90).toFixed(2)} ms`,
    range(idle, 1),
  ];
  return `| ${cells.join(' | ')} |`;
});
/** An idle worker's commands per second under an init, by command, median of the rounds. */
const idleByCommand = (contender: Contender): string => {
  const measures = results.get(contender) ?? [];
  const names = new Set(measures.flatMap((result) => [...result.idle.keys()]));
  return [...names]
    .map((name) => ({ name, rate: median(measures.map((result) => result.idle.get(name) ?? 0)) }))
    .sort((a, b) => b.rate - a.rate)
    .map(({ name, rate }) => `${name.toUpperCase()} ${rate.toFixed(1)}`)
    .join(', ');
};

process.stdout.write(
  [
    `### Redis endpoint with a real Sidekiq (\`scripts/bench/endpoint.ts\`)`,
    '',
    `Sidekiq 6.4.1 \`-c ${CONCURRENCY}\` under each init as PID 1, each with a redis-server of its own, ${ROUNDS} rounds; in a round`,
    `every init and its worker run at once, idle but for the one measured. Throughput: ${DRAINS} drains a round per init,`,
    `taking turns, of ${DRAIN_JOBS.toLocaleString('en')} no-op jobs pushed in one LPUSH to the waiting worker (after a warm-up drain of`,
    `${WARMUP_JOBS.toLocaleString('en')}), from the push to the start of the last; the ratio is each drain's over tini's drain of the same turn.`,
    `Figures per drain are the median and, in brackets, the middle half of the ${ROUNDS * DRAINS} drains (25th to 75th percentile).`,
    `CPU per job of the init (all its threads; a proxy's added), of redis-server and of the worker during a drain, and how`,
    `many times a job the worker's threads went to sleep (voluntary context switches: waits for a reply or for Ruby's lock).`,
    `Init peak VmRSS: its VmHWM after the drains (a proxy's, with its children's, for the proxy rows); range over the rounds.`,
    `Pick-up: from the push of one job to its start, the worker idle, ${PICKUPS} pushes a round spread over the 2 s BRPOP`,
    `timeout. Idle: commands per second (\`INFO commandstats\`, a script's own commands included) over ${IDLE_MS / 1000} s with no job.`,
    '',
    '| Init | Jobs/s | / tini | Init CPU per job | Init peak VmRSS | Redis CPU per job | Worker CPU per job | Worker sleeps per job | Pick-up p50 | Pick-up p90 | Idle Redis commands/s |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    'Idle, by command (per second, median of the rounds):',
    '',
    ...CONTENDERS.map((contender) => `- ${contender.name}: ${idleByCommand(contender)}.`),
    '',
  ].join('\n'),
);
