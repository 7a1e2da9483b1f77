// The worker OOM-killed for real: drain-init as PID 1 and a real Sidekiq 6.4.1 in a new memory-limited
// cgroup (v1 memory.limit_in_bytes, v2 memory.max), an AllocJob that takes memory past the limit. The
// kernel's OOM killer ends the worker, not drain-init, which tells the OOM kill from any SIGKILL by the
// cgroup's counter, re-enqueues the job and exits with the worker's status.
import { afterEach, describe, expect, it } from 'vitest';
import { memoryCgroup, type MemoryCgroup } from '../helpers/cgroup.js';
import { CLI, killedAfterEach, logLines, startInit } from '../helpers/pid1.js';
import {
  enqueue,
  expectOomKillRecovered,
  jobsInQueue,
  markers,
  sidekiqCommand,
  sidekiqEnv,
  sidekiqTestBed,
} from '../helpers/sidekiq.js';

const LIMIT_BYTES = 256 * 1024 * 1024;
/** 1 GiB at 32 MiB/s: the limit is reached a few seconds into the job, after Sidekiq's heartbeat showed it. */
const ALLOC_ARGS = [1024, 32, 'oom'];

describe('a worker OOM-killed at its memory limit', () => {
  const bed = sidekiqTestBed();
  const track = killedAfterEach();
  let cgroup: MemoryCgroup | undefined;

  afterEach(async () => {
    await cgroup?.remove();
    cgroup = undefined;
  });

  it('drain-init survives, logs "worker OOM-killed" and puts the job back in its queue', async () => {
    cgroup = memoryCgroup(`drain-init-oom-${process.pid}`, LIMIT_BYTES);
    const job = await enqueue(bed.redis(), { jobClass: 'AllocJob', args: ALLOC_ARGS });
    // A 1 s heartbeat: the job is in Sidekiq's work hash well before the limit.
    const env = {
      ...sidekiqEnv({ redisUrl: bed.redis().url, markerDir: bed.markerDir(), logLevel: 'warn' }),
      SIDEKIQ_BEAT_SECONDS: '1',
    };
    const drainInit = [
      process.execPath,
      CLI,
      '--instance-id',
      'oom',
      '--probe-port',
      '0',
      '--',
      ...sidekiqCommand({ concurrency: 1 }),
    ];
    // PID 1 moves itself into the cgroup, then becomes drain-init: the worker starts inside it.
    const run = track(startInit(['sh', '-c', 'echo 0 > "$0" && exec "$@"', cgroup.procs, ...drainInit], { env }));

    const result = await run.done;
    const log = logLines(result.stderr);
    // drain-init's own exit with the worker's status (unshare would say 1 had drain-init been killed).
    expect(result.code).toBe(137);
    expect(cgroup.oomKills()).toBe(1);
    expectOomKillRecovered(log, 'oom');
    expect(markers(bed.markerDir())).toMatchObject({ started: [job.jid], done: [] });
    expect(await jobsInQueue(bed.redis())).toEqual([job.payload]);
  }, 60_000);
});
