/**
 * Benchmark of "no job lost": the chaos run of test/integration/recovery-chaos.test.ts under tini, under
 * drain-init with its heartbeat mirror alone (--redis-endpoint off) and under drain-init with its Redis
 * endpoint, one after the other in one run, each with the same jobs and kill moments (same seed): 200
 * SleepJobs of 0.3 to 3 s on a real Sidekiq 6.4.1 (-c 10, real redis-server), the worker SIGKILLed five
 * times 0.3 to 4 s after it registered, the init started again after each exit (as a platform restarts a
 * container; drain-init with the same --instance-id), then left to finish. Then the endpoint once more with
 * the whole PID namespace killed each time, drain-init with its worker.
 *
 * Run with Node 24 (it strips the types) after `npm run build`: node scripts/bench/chaos.ts. Needs root (PID
 * namespaces), redis-server, sidekiq and tini. Prints a markdown table on stdout, progress on stderr.
 */
import { runChaos, summary, type ChaosPlan, type ChaosReport } from '../../test/helpers/chaos.ts';
import { startDrainInit, startInit, type Run } from '../../test/helpers/pid1.ts';
import { startRedis } from '../../test/helpers/redis.ts';
import { makeMarkerDir, removeMarkerDir, sidekiqCommand, sidekiqEnv } from '../../test/helpers/sidekiq.ts';

const PLAN: ChaosPlan = {
  jobs: 200,
  jobSeconds: [0.3, 3],
  killAfterMs: [300, 4_000],
  kills: 5,
  victim: 'worker',
  seed: 20_261_204,
  timeoutMs: 300_000,
};
const SIDEKIQ = sidekiqCommand({ concurrency: 10, timeoutS: 3 });
// The kills here are the test's, not the jobs' fault: a job they catch three times must not go to the Dead set.
const DRAIN_INIT_ARGS = [
  '--instance-id',
  'chaos',
  '--grace-period',
  '10s',
  '--probe-port',
  '0',
  '--max-job-deaths',
  '0',
];

interface Contender {
  readonly name: string;
  readonly victim: ChaosPlan['victim'];
  readonly start: (env: Record<string, string>) => Run;
}

const drainInit = (args: readonly string[]) => (env: Record<string, string>) =>
  startDrainInit([...DRAIN_INIT_ARGS, ...args, '--', ...SIDEKIQ], { env });

const CONTENDERS: readonly Contender[] = [
  { name: 'tini', victim: 'worker', start: (env) => startInit(['tini', '--', ...SIDEKIQ], { env }) },
  { name: 'drain-init, heartbeat mirror alone', victim: 'worker', start: drainInit(['--redis-endpoint', 'off']) },
  { name: 'drain-init, Redis endpoint', victim: 'worker', start: drainInit([]) },
  { name: 'drain-init, Redis endpoint, whole namespace killed', victim: 'namespace', start: drainInit([]) },
];

async function measure(contender: Contender): Promise<ChaosReport> {
  const redis = await startRedis();
  const markerDir = makeMarkerDir();
  try {
    const env = sidekiqEnv({ redisUrl: redis.url, markerDir, logLevel: 'warn' });
    const report = await runChaos(
      redis,
      markerDir,
      { ...PLAN, victim: contender.victim },
      () => contender.start(env),
      (line) => process.stderr.write(`${contender.name}: ${line}\n`),
    );
    process.stderr.write(`${contender.name}: ${summary(report)}\n`);
    return report;
  } finally {
    removeMarkerDir(markerDir);
    await redis.stop();
  }
}

function row(name: string, report: ChaosReport): string {
  const caught = report.kills.reduce((sum, kill) => sum + kill.inFlight.length, 0);
  const seen = report.kills.reduce((sum, kill) => sum + kill.seen.length, 0);
  const cells = [
    name,
    caught,
    seen,
    report.jobs.length - report.lost.length,
    report.lost.length,
    report.lostSeen.length,
    report.lostUnseen.length,
    report.duplicates,
    `${(report.durationMs / 1000).toFixed(0)} s`,
  ];
  return `| ${cells.join(' | ')} |`;
}

const rows: string[] = [];
for (const contender of CONTENDERS) rows.push(row(contender.name, await measure(contender)));

process.stdout.write(
  [
    `### No job lost: ${PLAN.jobs} jobs, ${PLAN.kills} SIGKILLs of the worker (\`scripts/bench/chaos.ts\`)`,
    '',
    `Method: ${PLAN.jobs} SleepJobs of ${PLAN.jobSeconds[0]} to ${PLAN.jobSeconds[1]} s (seed ${PLAN.seed}) on Sidekiq 6.4.1 \`-c 10\`, the init as PID 1 of its own`,
    `PID namespace; the worker SIGKILLed ${PLAN.kills} times, ${PLAN.killAfterMs[0] / 1000} to ${PLAN.killAfterMs[1] / 1000} s after it registered, the init started again after each exit`,
    '(drain-init with the same `--instance-id`), then the run left to finish. Each job appends a line to its done marker',
    'per completion. "In the last heartbeat": the killed worker\'s work hash, right after the kill, listed the job.',
    '',
    '| Init | Jobs in flight at the kills | of them in the last heartbeat | Finished | Lost | Lost, in the last heartbeat | Lost, started after it | Duplicate runs | Duration |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
  ].join('\n'),
);
