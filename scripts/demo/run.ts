// The drain-init demo: a real Sidekiq 6.4.1 under drain-init (PID 1 of its own PID namespace) gets the
// platform's SIGTERM while jobs are running; the demo narrates what happens and counts what became of
// every job. Run with Node 24 directly (type stripping): node scripts/demo/run.ts
// It plays the platform: SIGTERM, then SIGKILL when the grace period is over if drain-init is still up.
import { hostname } from 'node:os';
import type { Run } from '../../test/helpers/pid1.js';
import type { RedisServer } from '../../test/helpers/redis.js';
import type { EnqueuedJob, JobFate, JobOutcome } from '../../test/helpers/sidekiq.js';

// Node runs the helpers' .ts sources directly, so they are imported by their real names. tsc (without
// allowImportingTsExtensions) rejects a static '.ts' import, hence dynamic imports typed from the
// '.js' names tsc maps back to the same files. Type-only imports above are erased at run time.
const helper = (name: string): string => new URL(`../../test/helpers/${name}.ts`, import.meta.url).href;
const { killRun, startDrainInit, stopLikePlatform, ROOT }: typeof import('../../test/helpers/pid1.js') = await import(
  helper('pid1')
);
const { startRedis }: typeof import('../../test/helpers/redis.js') = await import(helper('redis'));
const {
  enqueue,
  jidOf,
  jobOutcomes,
  jobsInQueue,
  makeMarkerDir,
  markers,
  removeMarkerDir,
  sidekiqEnv,
  sidekiqProcesses,
  waitForMarker,
  waitForSidekiqRegistered,
}: typeof import('../../test/helpers/sidekiq.js') = await import(helper('sidekiq'));

const GRACE_S = 12;
const SIDEKIQ_TIMEOUT_S = 3;
const CONCURRENCY = 2;
// Enqueued before the worker starts, so the fetch order is known: BRPOP takes the oldest first, so with
// -c 2 the first two start at once and the other two wait for a free thread.
const JOBS: readonly { readonly tag: string; readonly seconds: number }[] = [
  { tag: 'six-a', seconds: 6 },
  { tag: 'twenty', seconds: 20 },
  { tag: 'six-b', seconds: 6 },
  { tag: 'one', seconds: 1 },
];
const APP = './test/fixtures/sidekiq-app/app.rb'; // relative to ROOT; Ruby's require needs the ./
const DRAIN_INIT_ARGS = [
  '--grace-period',
  `${GRACE_S}s`,
  '--log-format',
  'pretty',
  '--',
  'sidekiq',
  '-r',
  APP,
  '-t',
  String(SIDEKIQ_TIMEOUT_S),
  '-c',
  String(CONCURRENCY),
];

const t0 = Date.now();
const stamp = (): string => `+${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
const say = (source: string, text: string): void => {
  process.stdout.write(`${stamp()} ${`[${source}]`.padEnd(12)} ${text}\n`);
};
const demo = (text: string): void => say('demo', text);
const step = (text: string): void => {
  process.stdout.write(`\n${stamp()} ── ${text}\n`);
};

/** Prints a stream line by line as it comes, each line labelled by `label`. */
function follow(stream: NodeJS.ReadableStream | null, label: (line: string) => string): void {
  let rest = '';
  stream?.on('data', (chunk: Buffer) => {
    const lines = (rest + chunk.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) if (line.trim() !== '') say(label(line), line);
  });
  stream?.on('end', () => {
    if (rest.trim() !== '') say(label(rest), rest);
  });
}

const SIDEKIQ_LINE = /^\S+Z pid=\d+ tid=\S+ /;
const DRAIN_INIT_LINE = /^\S+Z (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) /;
const stderrLabel = (line: string): string =>
  SIDEKIQ_LINE.test(line) ? 'sidekiq' : DRAIN_INIT_LINE.test(line) ? 'drain-init' : 'stderr';

/** Narrates what Redis and the job markers show, whenever it changes. Returns a stop function. */
function watch(redis: RedisServer, markerDir: string, tags: ReadonlyMap<string, string>): () => Promise<void> {
  let last = '';
  let seen = new Set<string>();
  let stopped = false;
  const tick = async (): Promise<void> => {
    const found = markers(markerDir);
    const now = new Set<string>();
    for (const [state, jids] of [
      ['started', found.started],
      ['done', found.done],
      ['interrupted', found.interrupted],
    ] as const) {
      for (const jid of jids) {
        const key = `${jid}.${state}`;
        now.add(key);
        if (!seen.has(key)) demo(`job ${tags.get(jid) ?? jid} ${state === 'done' ? 'FINISHED' : state}`);
      }
    }
    seen = now;
    const processes = await sidekiqProcesses(redis);
    const queued = (await jobsInQueue(redis, 'default')).map((payload) => tags.get(jidOf(payload)) ?? jidOf(payload));
    const state = [
      processes.length === 0
        ? 'no live Sidekiq process registered'
        : processes.map((p) => `${p.identity} busy=${p.busy} quiet=${p.quiet}`).join(', '),
      `queue:default=[${queued.join(', ')}]`,
    ].join('; ');
    if (state !== last) say('redis', state);
    last = state;
  };
  const loop = (async () => {
    while (!stopped) {
      await tick().catch((error: unknown) => say('redis', `(read failed: ${(error as Error).message})`));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await tick().catch(() => undefined);
  })();
  return async () => {
    stopped = true;
    await loop;
  };
}

interface Outcome extends JobOutcome {
  readonly tag: string;
  readonly seconds: number;
  readonly detail: string;
}

function describeOutcome(outcome: JobOutcome): string {
  const identical = outcome.identical ? 'byte-identical' : 'MODIFIED payload';
  switch (outcome.fate) {
    case 'finished':
      return 'ran to its end (done marker)';
    case 'requeued':
      return `started, ${outcome.interrupted ? 'interrupted, ' : ''}pushed back to queue:default (${identical}); will run again from the start`;
    case 'waiting':
      return `never started, still in queue:default (${identical})`;
    case 'retry/dead':
      return 'in the retry or dead set';
    case 'lost':
      return outcome.started ? 'started, then vanished: no done marker, in no queue' : 'in no queue and never ran';
  }
}

async function outcomes(redis: RedisServer, markerDir: string, jobs: readonly EnqueuedJob[]): Promise<Outcome[]> {
  return (await jobOutcomes(redis, markerDir, jobs)).map((outcome, index) => {
    const spec = JOBS[index] ?? { tag: outcome.jid, seconds: 0 };
    return { ...outcome, tag: spec.tag, seconds: spec.seconds, detail: describeOutcome(outcome) };
  });
}

let redis: RedisServer | undefined;
let markerDir: string | undefined;
let drainInit: Run | undefined;
let stopWatching: (() => Promise<void>) | undefined;

let aborted = false;
let cleaning: Promise<void> | undefined;

/** Stops everything the demo started; every caller waits for the same single clean-up. */
function cleanUp(): Promise<void> {
  cleaning ??= cleanUpOnce();
  return cleaning;
}

async function cleanUpOnce(): Promise<void> {
  await stopWatching?.().catch(() => undefined);
  // Killing the namespace's PID 1 makes the kernel kill everything else in it.
  if (drainInit !== undefined) await killRun(drainInit);
  await redis?.stop();
  if (markerDir !== undefined) removeMarkerDir(markerDir);
}

async function main(): Promise<number> {
  process.stdout.write(`drain-init demo: a real Sidekiq under drain-init gets the platform's SIGTERM while jobs run\n`);

  step('1. a local redis-server');
  redis = await startRedis();
  markerDir = makeMarkerDir();
  demo(`redis-server pid ${redis.pid()} on ${redis.url}; job markers in ${markerDir}`);

  step(`2. enqueue ${JOBS.length} SleepJobs in queue:default (LPUSH, as Sidekiq's client does)`);
  const jobs: EnqueuedJob[] = [];
  const tags = new Map<string, string>();
  for (const job of JOBS) {
    const pushed = await enqueue(redis, { args: [job.seconds, job.tag] });
    jobs.push(pushed);
    tags.set(pushed.jid, job.tag);
    demo(`${job.tag.padEnd(7)} ${String(job.seconds).padStart(2)} s  jid ${pushed.jid}`);
  }

  step('3. start drain-init as PID 1 of a new PID namespace, with Sidekiq as its child');
  demo(`unshare --pid --fork --mount-proc node bin/drain-init.js ${DRAIN_INIT_ARGS.join(' ')}`);
  drainInit = startDrainInit(DRAIN_INIT_ARGS, { cwd: ROOT, env: sidekiqEnv({ redisUrl: redis.url, markerDir }) });
  follow(drainInit.process.stdout, () => 'sidekiq');
  follow(drainInit.process.stderr, stderrLabel);
  const drainInitPid = await drainInit.pid();
  demo(`drain-init is host pid ${drainInitPid} (PID 1 inside its namespace)`);
  stopWatching = watch(redis, markerDir, tags);

  step(`4. wait until Sidekiq has registered and both threads are busy (${JOBS[0]?.tag} and ${JOBS[1]?.tag})`);
  const registered = await waitForSidekiqRegistered(redis, { timeoutMs: 30_000 });
  demo(
    `Sidekiq registered as ${registered.identity} (host ${hostname()}), concurrency ${registered.concurrency}: its signal traps are installed`,
  );
  for (const job of jobs.slice(0, CONCURRENCY)) await waitForMarker(markerDir, job.jid, 'started', 30_000);
  demo(
    `${jobs
      .slice(0, CONCURRENCY)
      .map((job) => tags.get(job.jid))
      .join(' and ')} are running; Redis's busy count catches up on the next heartbeat (every 5 s)`,
  );

  step(`5. the platform sends SIGTERM to drain-init; it will SIGKILL it ${GRACE_S} s later if it is still running`);
  const exit = await stopLikePlatform(drainInit, GRACE_S * 1000, (signal) =>
    demo(
      signal === 'SIGTERM'
        ? `SIGTERM sent to drain-init (host pid ${drainInitPid})`
        : `grace period of ${GRACE_S} s is over and drain-init is still running: platform SIGKILL`,
    ),
  );
  if (aborted) return 130;
  const stopSeconds = exit.stopMs / 1000;
  await stopWatching();
  stopWatching = undefined;
  const status = exit.signal === null ? `exit code ${String(exit.code)}` : `killed by ${exit.signal}`;
  demo(`drain-init is gone after ${stopSeconds.toFixed(1)} s (${status}); the grace period was ${GRACE_S} s`);

  step('6. summary');
  const results = await outcomes(redis, markerDir, jobs);
  const count = (fate: JobFate): number => results.filter((result) => result.fate === fate).length;
  for (const result of results) {
    demo(
      `${result.tag.padEnd(7)} ${String(result.seconds).padStart(2)} s  ${result.fate.toUpperCase().padEnd(10)} ${result.detail}`,
    );
  }
  process.stdout.write(
    `\n  finished: ${count('finished')}   requeued: ${count('requeued')}   still waiting (never started): ${count('waiting')}` +
      `   retry/dead: ${count('retry/dead')}   lost: ${count('lost')}\n` +
      `  drain-init: ${status} after ${stopSeconds.toFixed(1)} s of a ${GRACE_S} s grace period\n`,
  );
  return 0;
}

let code = 1;
const interrupted = (): void => {
  aborted = true;
  process.stdout.write('\ninterrupted: cleaning up\n');
  void cleanUp().finally(() => process.exit(130));
};
process.once('SIGINT', interrupted);
process.once('SIGTERM', interrupted);
try {
  code = await main();
} catch (error) {
  if (!aborted) process.stderr.write(`demo failed: ${(error as Error).stack ?? String(error)}\n`);
} finally {
  await cleanUp();
}
process.exit(aborted ? 130 : code);
