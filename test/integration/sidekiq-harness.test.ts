// The real-Sidekiq harness, proven WITHOUT drain-init: Sidekiq 6.4.1 is spawned directly (no shell) and
// signalled by the test. This is the baseline the stop sequence is measured against.
import { hostname } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import {
  enqueue,
  jobsInQueue,
  markers,
  sidekiqCommand,
  sidekiqEnv,
  sidekiqProcesses,
  sidekiqTestBed,
  spawnSidekiq,
  waitForMarker,
  waitForSidekiqBusy,
  waitForSidekiqQuiet,
  type SidekiqRun,
} from '../helpers/sidekiq.js';

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe('real Sidekiq 6.4.1 harness, without drain-init', () => {
  const bed = sidekiqTestBed();
  const server = bed.redis;
  let sidekiq: SidekiqRun | undefined;

  const start = (timeoutS: number, concurrency: number): SidekiqRun => {
    sidekiq = spawnSidekiq(
      sidekiqCommand({ timeoutS, concurrency }),
      sidekiqEnv({ redisUrl: server().url, markerDir: bed.markerDir() }),
    );
    return sidekiq;
  };

  afterEach(async () => {
    await sidekiq?.kill();
    sidekiq = undefined;
  });

  it('runs a 1 s SleepJob to its end, then exits 0 on TERM and logs it', async () => {
    const job = await enqueue(server(), { args: [1, 'short'] });
    const run = start(3, 2);
    await waitForMarker(bed.markerDir(), job.jid, 'done', 20_000);

    run.signal('SIGTERM');
    const exit = await within(run.exited, 10_000, 'Sidekiq to exit after TERM');

    expect(exit).toEqual({ code: 0, signal: null });
    const log = run.log();
    expect(log).toMatch(/ DEBUG: Got TERM signal$/m); // debug level only: sidekiqEnv sets SIDEKIQ_LOG_LEVEL=debug
    expect(log).toMatch(/ INFO: Shutting down$/m);
    expect(log).toMatch(/ INFO: Bye!$/m);
    expect(log).toContain(`jid=${job.jid} INFO: SleepJob short done`);
    expect(markers(bed.markerDir())).toEqual({ started: [job.jid], done: [job.jid], interrupted: [] });
    expect(await jobsInQueue(server())).toEqual([]);
    expect(await sidekiqProcesses(server())).toEqual([]);
  }, 40_000);

  it('TSTP then TERM with -t 3 on a busy 6 s job: the job is interrupted and pushed back byte-identical', async () => {
    const job = await enqueue(server(), { args: [6, 'long'] });
    const run = start(3, 2);
    await waitForMarker(bed.markerDir(), job.jid, 'started', 20_000);

    run.signal('SIGTSTP');
    await run.waitForLog(/ INFO: Received TSTP, no longer accepting new work$/m, 5_000);
    const termAt = Date.now();
    run.signal('SIGTERM');
    const exit = await within(run.exited, 15_000, 'Sidekiq to exit after TERM');
    const stopSeconds = (Date.now() - termAt) / 1000;

    expect(exit).toEqual({ code: 0, signal: null });
    expect(stopSeconds).toBeGreaterThan(2.4); // -t 3, its wait loop ends up to 0.5 s early
    expect(stopSeconds).toBeLessThan(7);
    const log = run.log();
    expect(log).toMatch(/ DEBUG: Got TSTP signal$/m);
    expect(log).toMatch(/ DEBUG: Got TERM signal$/m);
    expect(log).toMatch(/ WARN: Terminating 1 busy worker threads$/m);
    expect(log).toMatch(/ INFO: Pushed 1 jobs back to Redis$/m);
    expect(await jobsInQueue(server())).toEqual([job.payload]);
    expect(markers(bed.markerDir())).toEqual({ started: [job.jid], done: [], interrupted: [job.jid] });
    expect(await sidekiqProcesses(server())).toEqual([]);
  }, 40_000);

  it('shows busy and quiet in Redis only on heartbeats; a quiet worker leaves queued jobs alone', async () => {
    const running = await enqueue(server(), { args: [20, 'busy'] });
    const run = start(1, 1);
    await waitForMarker(bed.markerDir(), running.jid, 'started', 20_000);
    const waiting = await enqueue(server(), { args: [1, 'waiting'] });

    const [busy] = await waitForSidekiqBusy(server(), 1, { pid: run.pid, timeoutMs: 12_000 });
    expect(busy).toMatchObject({
      hostname: hostname(),
      pid: run.pid,
      busy: 1,
      quiet: false,
      concurrency: 1,
      queues: ['default'],
    });
    expect(busy?.identity).toMatch(new RegExp(`^${hostname()}:${run.pid}:[0-9a-f]{12}$`));

    run.signal('SIGTSTP');
    const quiet = await waitForSidekiqQuiet(server(), { pid: run.pid, timeoutMs: 12_000 });
    expect(quiet).toMatchObject({ identity: busy?.identity, busy: 1, quiet: true });
    expect(await jobsInQueue(server())).toEqual([waiting.payload]);

    run.signal('SIGTERM');
    expect(await within(run.exited, 10_000, 'Sidekiq to exit after TERM')).toEqual({ code: 0, signal: null });
    // RPUSH puts the interrupted job at the fetch end: it runs before the job that was waiting.
    expect(await jobsInQueue(server())).toEqual([waiting.payload, running.payload]);
    expect(markers(bed.markerDir())).toEqual({ started: [running.jid], done: [], interrupted: [running.jid] });
  }, 40_000);
});
