// drain-init's Redis endpoint with a real Sidekiq 6.4.1 under drain-init as PID 1: each job recorded as it
// leaves its queue, handed over within milliseconds of its push while the worker waits, nil at the BRPOP's
// timeout with no spin, a fetch that never reached the worker put back, a worker that bypasses the endpoint
// mirrored instead (and told), and several Sidekiq processes each answering for their own jobs only.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { childOf, eventually, killedAfterEach, logLines, startDrainInit, waitFor, type Run } from '../helpers/pid1.js';
import {
  enqueue,
  jobsInQueue,
  markerRuns,
  pickUpMs,
  sidekiqCommand,
  sidekiqEnv,
  sidekiqTestBed,
  waitForMarker,
  waitForSidekiqRegistered,
  type EnqueuedJob,
} from '../helpers/sidekiq.js';

const ARGS = ['--grace-period', '20s', '--probe-port', '0', '--instance-id', 'endpoint'];
const RECORD = 'drain-init:jobs:endpoint';

describe("drain-init's Redis endpoint with a real Sidekiq", () => {
  const bed = sidekiqTestBed();
  const track = killedAfterEach();

  function start(
    args: readonly string[] = [],
    env: Record<string, string> = {},
    command = sidekiqCommand({ concurrency: 2 }),
  ): Run {
    const sidekiq = sidekiqEnv({ redisUrl: bed.redis().url, markerDir: bed.markerDir(), logLevel: 'warn' });
    return track(startDrainInit([...ARGS, ...args, '--', ...command], { env: { ...sidekiq, ...env } }));
  }

  const recorded = async (): Promise<string[]> => ((await bed.redis().call('HKEYS', RECORD)) as string[]).sort();
  const commandCalls = async (name: string): Promise<number> =>
    Number(
      new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(await bed.redis().command('INFO', 'commandstats'))?.[1] ?? 0,
    );

  it('hands a job pushed while the worker waits over at once, and costs one fetch per thread per timeout while idle', async () => {
    // One thread: without the change watch, a push would wait out the BRPOP's 2 s timeout half the time.
    const run = start([], {}, sidekiqCommand({ concurrency: 1 }));
    await waitForSidekiqRegistered(bed.redis());
    await eventually(
      async () => ((await run.stderr()).includes('connected to Redis') ? true : undefined),
      'drain-init',
    );
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    await bed.redis().call('CONFIG', 'RESETSTAT');
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    // A fetch script run per 2 s BRPOP timeout: about 3, never a spin. Sidekiq's poller runs a script of its
    // own about once in 5 s: at most 2 more EVALSHAs.
    const idleRuns = await commandCalls('evalsha');
    expect(idleRuns).toBeGreaterThanOrEqual(2);
    expect(idleRuns).toBeLessThanOrEqual(7);
    expect(await commandCalls('brpop')).toBe(0);
    // Each well within the BRPOP's 2 s timeout: the waiting fetch ended at the push, not at its timeout (which
    // would make one of five over 500 ms but for a chance of 1 in 1,000).
    const pickUps = [];
    for (let trial = 0; trial < 5; trial++) {
      pickUps.push(await pickUpMs(bed.redis(), bed.markerDir(), `pick-up-${trial}`, 0.1));
      await new Promise((resolve) => setTimeout(resolve, 700));
    }
    expect(Math.max(...pickUps)).toBeLessThan(500);
    expect(
      logLines(run.stderr()).find((line) => String(line.msg).startsWith('Redis endpoint for the worker')),
    ).toBeDefined();
  }, 60_000);

  it('records each job as it leaves its queue: the stop log counts them before any heartbeat could', async () => {
    const run = start([], {}, sidekiqCommand({ concurrency: 3 }));
    await waitForSidekiqRegistered(bed.redis());
    const jobs: EnqueuedJob[] = [];
    for (let index = 0; index < 3; index++) jobs.push(await enqueue(bed.redis(), { args: [20, `recorded-${index}`] }));
    for (const job of jobs) await waitForMarker(bed.markerDir(), job.jid, 'started');
    expect(await recorded()).toEqual(jobs.map((job) => job.jid).sort());
    process.kill(await run.pid(), 'SIGTERM');
    const stop = await waitFor(
      () => logLines(run.stderr()).find((line) => String(line.msg).startsWith('stop requested')),
      'the stop',
    );
    expect(stop.jobsInFlight).toBe(3);
  }, 60_000);

  it('puts back a job whose fetch never reached the worker: its connection closed first', async () => {
    const job = await enqueue(bed.redis(), { args: [1, 'never-delivered'] });
    // A worker that fetches from an empty queue first (Redis holds the fetch script from then on), then sends
    // Sidekiq's fetch and closes at once: drain-init reads the fetch and the close together, the script runs
    // in Redis, and its answer has nobody to go to. It waits a second first, for drain-init to have claimed
    // its record (a fetch before that waits).
    const worker = [
      'import os, socket, time, urllib.parse as u',
      'time.sleep(1)',
      "url = u.urlparse(os.environ['REDIS_URL'])",
      's = socket.create_connection((url.hostname, url.port))',
      "s.sendall(b'*3\\r\\n$5\\r\\nBRPOP\\r\\n$11\\r\\nqueue:empty\\r\\n$1\\r\\n1\\r\\n'); s.recv(16)",
      "s.sendall(b'*3\\r\\n$5\\r\\nBRPOP\\r\\n$13\\r\\nqueue:default\\r\\n$1\\r\\n2\\r\\n')",
      's.close()',
      'time.sleep(30)',
    ].join('\n');
    const run = start(['--preset', 'sidekiq'], {}, ['python3', '-c', worker]);
    // The job was taken from its queue by then: the line comes only from a put-back that found it recorded.
    const putBack = await waitFor(
      () =>
        logLines(run.stderr()).find((line) => String(line.msg).startsWith('a fetched job never reached the worker')),
      'the log',
    );
    expect(await jobsInQueue(bed.redis())).toEqual([job.payload]);
    expect(await recorded()).toEqual([]);
    expect(putBack.jid).toBe(job.jid);
  }, 30_000);

  it('mirrors a worker whose Redis URL is set in the app instead, and says what to change, once', async () => {
    const run = start([], { APP_REDIS_URL: bed.redis().url });
    await waitForSidekiqRegistered(bed.redis());
    const job = await enqueue(bed.redis(), { args: [30, 'outside'] });
    await waitForMarker(bed.markerDir(), job.jid, 'started');
    await eventually(
      async () => ((await recorded()).includes(job.jid) ? true : undefined),
      'the job mirrored from a heartbeat',
      15_000,
    );
    const warned = (): Record<string, unknown>[] =>
      logLines(run.stderr()).filter((line) =>
        String(line.msg).startsWith("a Sidekiq process talks to Redis without drain-init's endpoint"),
      );
    expect(warned()).toHaveLength(1);
    const init = await run.pid();
    process.kill(await waitFor(() => childOf(init), 'the worker'), 'SIGKILL');
    await run.done;
    expect(await jobsInQueue(bed.redis())).toEqual([job.payload]);
    expect(warned()).toHaveLength(1);
  }, 60_000);

  it("tells apart several Sidekiq processes under one drain-init: a killed one's jobs come back at once, never another's", async () => {
    const sidekiq = sidekiqCommand({ concurrency: 2 }).join(' ');
    const run = start(['--preset', 'sidekiq'], {}, ['sh', '-c', `${sidekiq} & ${sidekiq} & wait`]);
    const jobs: EnqueuedJob[] = [];
    for (let index = 0; index < 4; index++) jobs.push(await enqueue(bed.redis(), { args: [15, `swarm-${index}`] }));
    for (const job of jobs) await waitForMarker(bed.markerDir(), job.jid, 'started', 30_000);
    const started = markerRuns(bed.markerDir(), 'started');
    const pidOf = (job: EnqueuedJob): number => started.get(job.jid)?.[0]?.pid ?? 0;
    const victimPid = pidOf(jobs[0] as EnqueuedJob);
    const victims = jobs.filter((job) => pidOf(job) === victimPid);
    const others = jobs.filter((job) => pidOf(job) !== victimPid);
    expect(victims).toHaveLength(2);
    expect(others).toHaveLength(2);

    process.kill(hostPid(await run.pid(), victimPid), 'SIGKILL');
    await eventually(
      async () => {
        const queued = await jobsInQueue(bed.redis());
        return victims.every((job) => queued.includes(job.payload)) ? true : undefined;
      },
      "the killed process's jobs back in their queue",
      5_000,
    );
    expect((await jobsInQueue(bed.redis())).filter((payload) => others.some((job) => job.payload === payload))).toEqual(
      [],
    );
    expect(await recorded()).toEqual(others.map((job) => job.jid).sort());
  }, 60_000);
});

/** The host pid of the process that the PID namespace of `init` numbers `namespacePid`. */
function hostPid(init: number, namespacePid: number): number {
  const pending = [init];
  for (let pid = pending.pop(); pid !== undefined; pid = pending.pop()) {
    const nspid = /^NSpid:\s+(.*)$/m
      .exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
      ?.trim()
      .split(/\s+/)
      .at(-1);
    if (Number(nspid) === namespacePid) return pid;
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    if (children !== '') pending.push(...children.split(' ').map(Number));
  }
  throw new Error(`no process ${namespacePid} below ${init}`);
}
