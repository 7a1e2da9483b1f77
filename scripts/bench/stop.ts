/**
 * Benchmark of the graceful stop: the same real Sidekiq 6.4.1 workload (real redis-server) under drain-init,
 * tini and `dumb-init --rewrite 15:20`, each as PID 1 of a new PID namespace, one after the other in one run.
 * The bench plays the platform: SIGTERM to the init at T0, SIGKILL to it at T0 + 12 s if it still runs.
 * It measures the stop duration and what became of every job: finished, requeued or lost.
 * Then, in the same run, an idle and a busy Sidekiq under drain-init with Sidekiq awareness (drain-aware) and
 * with Redis turned off (`--redis-url none`: the timed plan only).
 *
 * Run with Node 24 (it strips the types) after `npm run build`: node scripts/bench/stop.ts. Needs root (PID
 * namespaces), redis-server, sidekiq, tini and dumb-init. Prints a markdown table on stdout, progress on stderr.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CLI,
  killRun,
  logLines,
  startDrainInit,
  startInit,
  stopLikePlatform,
  type PlatformStop,
  type Run,
} from '../../test/helpers/pid1.ts';
import { startRedis, type RedisServer } from '../../test/helpers/redis.ts';
import {
  enqueue,
  jobOutcomes,
  makeMarkerDir,
  removeMarkerDir,
  sidekiqCommand,
  sidekiqEnv,
  waitForMarker,
  waitForSidekiqRegistered,
  type EnqueuedJob,
  type JobFate,
  type JobOutcome,
} from '../../test/helpers/sidekiq.ts';

const GRACE_MS = 12_000;
const SIDEKIQ_TIMEOUT_S = 3;
const CONCURRENCY = 3;
/** One SleepJob each, enqueued before the worker starts; with -c 3 all of them run at once. */
const JOB_SECONDS: readonly number[] = [2, 6, 30];
/** How long after every job has started the platform's SIGTERM comes. */
const BUSY_BEFORE_TERM_MS = 1_000;
const START_TIMEOUT_MS = 30_000;

const SIDEKIQ = sidekiqCommand({ timeoutS: SIDEKIQ_TIMEOUT_S, concurrency: CONCURRENCY });

interface Init {
  readonly name: string;
  /** How the init is called, for the method notes. */
  readonly shown: string;
  readonly start: (env: Record<string, string>) => Run;
}

const INITS: readonly Init[] = [
  {
    name: 'drain-init',
    shown: `drain-init --grace-period ${GRACE_MS / 1000}s -- sidekiq ...`,
    start: (env) => startDrainInit(['--grace-period', `${GRACE_MS / 1000}s`, '--', ...SIDEKIQ], { env }),
  },
  { name: 'tini', shown: 'tini -- sidekiq ...', start: (env) => startInit(['tini', '--', ...SIDEKIQ], { env }) },
  {
    name: 'dumb-init --rewrite 15:20',
    shown: 'dumb-init --rewrite 15:20 sidekiq ... (TERM is passed on as TSTP)',
    start: (env) => startInit(['dumb-init', '--rewrite', '15:20', ...SIDEKIQ], { env }),
  },
];

/** Grace 30 s and -t 10: the timed plan sends TERM at +15 s, so a drain-aware stop has room to show. */
const DRAIN_GRACE_MS = 30_000;
const DRAIN_SIDEKIQ = sidekiqCommand({ timeoutS: 10, concurrency: 2 });
const DRAIN_ARGS = ['--grace-period', `${DRAIN_GRACE_MS / 1000}s`];
const DRAIN_MODES: readonly Init[] = [
  {
    name: 'drain-aware',
    shown: `drain-init ${DRAIN_ARGS.join(' ')} -- sidekiq -t 10 ... (Redis from REDIS_URL)`,
    start: (env) => startDrainInit([...DRAIN_ARGS, '--', ...DRAIN_SIDEKIQ], { env }),
  },
  {
    name: 'timed only',
    shown: `drain-init ${DRAIN_ARGS.join(' ')} --redis-url none -- sidekiq -t 10 ...`,
    start: (env) => startDrainInit([...DRAIN_ARGS, '--redis-url', 'none', '--', ...DRAIN_SIDEKIQ], { env }),
  },
];
const WORKLOADS: readonly { name: string; jobSeconds: readonly number[] }[] = [
  { name: 'idle', jobSeconds: [] },
  { name: 'busy (one 8 s job)', jobSeconds: [8] },
];

interface Result {
  readonly init: Init;
  readonly stop: PlatformStop;
  readonly outcomes: readonly JobOutcome[];
  /** drain-init's own "stop requested: ..." line, if it logged one. */
  readonly plan: string | undefined;
}

let current: Run | undefined;
let interrupted = false;

function progress(message: string): void {
  if (!interrupted) process.stderr.write(`bench stop: ${message}\n`);
}

function fail(message: string): never {
  process.stderr.write(`bench stop: ${message}\n`);
  process.exit(1);
}

function preflight(): void {
  const major = Number(process.versions.node.split('.')[0]);
  if (major !== 24) fail(`needs Node 24 (running ${process.version}); put node_modules/.bin first in PATH`);
  if (!existsSync(CLI)) fail(`${CLI} is missing: run npm run build`);
  for (const [program, args] of [
    ['redis-server', ['--version']],
    ['sidekiq', ['-V']],
    ['tini', ['--version']],
    ['dumb-init', ['--version']],
  ] as const) {
    if (spawnSync(program, args, { stdio: 'ignore' }).error !== undefined)
      fail(`missing program '${program}' (bash scripts/setup.sh installs it)`);
  }
  if (spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true'], { stdio: 'ignore' }).status !== 0) {
    fail('cannot create a PID namespace (unshare --pid --fork --mount-proc true failed): run as root');
  }
}

/** Starts the init with `jobSeconds` queued; SIGTERM once every job has started (or Sidekiq registered) and BUSY_BEFORE_TERM_MS more. */
async function measure(
  init: Init,
  redis: RedisServer,
  jobSeconds: readonly number[],
  graceMs: number,
): Promise<Result> {
  await redis.call('FLUSHALL');
  const markerDir = makeMarkerDir();
  try {
    const jobs: EnqueuedJob[] = [];
    for (const seconds of jobSeconds) jobs.push(await enqueue(redis, { args: [seconds, `${seconds}s`] }));
    progress(`${init.name}: starting Sidekiq with ${jobs.length} jobs queued`);
    const run = init.start(sidekiqEnv({ redisUrl: redis.url, markerDir }));
    current = run;
    if (jobs.length === 0) await waitForSidekiqRegistered(redis, { timeoutMs: START_TIMEOUT_MS });
    for (const job of jobs) await waitForMarker(markerDir, job.jid, 'started', START_TIMEOUT_MS);
    await sleep(BUSY_BEFORE_TERM_MS);
    progress(`${init.name}: ${jobs.length} jobs busy, SIGTERM`);
    const stop = await stopLikePlatform(run, graceMs, (signal) => {
      if (signal === 'SIGKILL') progress(`${init.name}: still running at the deadline, SIGKILL`);
    });
    await killRun(run);
    current = undefined;
    const plan = logLines(run.stderr()).find((line) => String(line.msg).startsWith('stop requested'))?.msg;
    return {
      init,
      stop,
      outcomes: await jobOutcomes(redis, markerDir, jobs),
      plan: typeof plan === 'string' ? plan : undefined,
    };
  } finally {
    if (current !== undefined) await killRun(current);
    current = undefined;
    removeMarkerDir(markerDir);
  }
}

function count(outcomes: readonly JobOutcome[], ...fates: JobFate[]): number {
  return outcomes.filter((outcome) => fates.includes(outcome.fate)).length;
}

function exitText(stop: PlatformStop): string {
  // unshare cannot pass a SIGKILL on (it exits 1): the platform's own kill is reported as such.
  if (stop.killedAtDeadline) return 'SIGKILL (platform, at the deadline)';
  return stop.code !== null ? String(stop.code) : `killed by ${stop.signal ?? '?'}`;
}

function jobText(outcome: JobOutcome, seconds: number | undefined): string {
  const requeued = outcome.fate === 'requeued' || outcome.fate === 'waiting';
  return `${seconds ?? '?'} s ${outcome.fate}${requeued ? (outcome.identical ? ' (byte-identical)' : ' (MODIFIED payload)') : ''}`;
}

function report(results: readonly Result[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  const header = ['Init', 'Stop duration', 'Finished', 'Requeued', 'Lost', 'Exit code'];
  const rows = results.map(({ init, stop, outcomes }) => [
    init.name,
    `${(stop.stopMs / 1000).toFixed(1)} s`,
    String(count(outcomes, 'finished')),
    String(count(outcomes, 'requeued', 'waiting')),
    String(count(outcomes, 'lost')),
    exitText(stop),
  ]);
  const retryOrDead = results
    .filter((result) => count(result.outcomes, 'retry/dead') > 0)
    .map((result) => result.init.name);
  const plan = results.find((result) => result.plan !== undefined)?.plan;
  const out = [
    `## Graceful stop of a busy Sidekiq 6.4.1: drain-init vs tini and dumb-init (Node ${process.versions.node}, ${new Date().toISOString()})`,
    '',
    line(header),
    line(header.map((_, index) => (index === 0 ? '---' : '---:'))),
    ...rows.map(line),
    '',
    'Method:',
    `- Each init runs as PID 1 of its own PID namespace (\`unshare --pid --fork --mount-proc\`), wrapping the same \`${SIDEKIQ.join(' ').replace(/ -r \S+/, ' -r app.rb')}\` ` +
      `(test/fixtures/sidekiq-app/app.rb) against one local redis-server, flushed before each init: ${INITS.map((init) => `\`${init.shown}\``).join('; ')}.`,
    `- Workload: SleepJobs of ${JOB_SECONDS.join(', ')} s enqueued before Sidekiq starts; once all of them have started (their .started markers), ` +
      `${BUSY_BEFORE_TERM_MS / 1000} s later the bench plays the platform: SIGTERM to the init at T0, SIGKILL to it at T0 + ${GRACE_MS / 1000} s if it still runs.` +
      (plan === undefined ? '' : ` drain-init's plan: "${plan}".`),
    "- Stop duration: T0 until the init is gone (its unshare ended, stdout and stderr closed); exit code: the init's, as unshare passes it on. " +
      'Finished: the job wrote its .done marker. ' +
      'Requeued: back in queue:default. Lost: neither finished nor in a queue' +
      (retryOrDead.length === 0
        ? ' (none went to the retry or dead set).'
        : `; in the retry or dead set (counted in no column): ${retryOrDead.join(', ')}.`),
    `- Per job: ${results.map(({ init, outcomes }) => `${init.name}: ${outcomes.map((outcome, index) => jobText(outcome, JOB_SECONDS[index])).join(', ')}`).join('; ')}.`,
  ];
  return `${out.join('\n')}\n`;
}

function drainReport(results: readonly { workload: string; result: Result }[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  const header = ['Worker', 'Stop', 'Stop duration', 'Finished', 'Lost', 'Exit code'];
  const seconds = (workload: string, mode: string): number =>
    (results.find((entry) => entry.workload === workload && entry.result.init.name === mode)?.result.stop.stopMs ??
      Number.NaN) / 1000;
  const out = [
    `## Drain-aware stop against the timed plan alone, Sidekiq 6.4.1 (Node ${process.versions.node}, ${new Date().toISOString()})`,
    '',
    line(header),
    line(header.map((_, index) => (index < 2 ? '---' : '---:'))),
    ...results.map(({ workload, result: { init, stop, outcomes } }) =>
      line([
        workload,
        init.name,
        `${(stop.stopMs / 1000).toFixed(1)} s`,
        String(count(outcomes, 'finished')),
        String(count(outcomes, 'lost')),
        exitText(stop),
      ]),
    ),
    '',
    ...WORKLOADS.map(
      ({ name }) =>
        `- ${name}: the timed stop took ${(seconds(name, 'timed only') / seconds(name, 'drain-aware')).toFixed(1)} times as long as the drain-aware one.`,
    ),
    '',
    'Method:',
    `- ${DRAIN_MODES.map((mode) => `${mode.name}: \`${mode.shown}\``).join('; ')}; as PID 1 of its own PID namespace, one local redis-server flushed before each run.`,
    `- Timed plan: TSTP at T0, TERM at +15 s, KILL at +28 s. The bench sends SIGTERM ${BUSY_BEFORE_TERM_MS / 1000} s after Sidekiq registered (idle) or after the job started (busy), and SIGKILL at T0 + ${DRAIN_GRACE_MS / 1000} s if the init still runs.`,
  ];
  return `${out.join('\n')}\n`;
}

async function main(): Promise<void> {
  preflight();
  const redis = await startRedis();
  try {
    const results: Result[] = [];
    for (const init of INITS) results.push(await measure(init, redis, JOB_SECONDS, GRACE_MS));
    process.stdout.write(report(results));
    const drains: { workload: string; result: Result }[] = [];
    for (const { name, jobSeconds } of WORKLOADS) {
      for (const mode of DRAIN_MODES)
        drains.push({ workload: name, result: await measure(mode, redis, jobSeconds, DRAIN_GRACE_MS) });
    }
    process.stdout.write(`\n${drainReport(drains)}`);
  } finally {
    await redis.stop();
  }
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`bench stop: interrupted by ${signal}\n`);
    // Killing the namespace's PID 1 makes the kernel kill Sidekiq too; redis-server goes with the exit hook.
    void (current === undefined ? Promise.resolve() : killRun(current)).finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (error) {
  if (current !== undefined) await killRun(current);
  fail(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}
