// No job lost, end to end: 200 SleepJobs of 0.5 to 5 s on a real Sidekiq 6.4.1 (-c 10) under drain-init as
// PID 1, the worker SIGKILLed at random moments five times, drain-init started again after each exit with
// the same --instance-id (as a platform restarts a container). Sidekiq's own fetch loses every job a
// SIGKILL catches; drain-init re-enqueues each one Redis showed running, i.e. in the work hash of the dead
// worker's last heartbeat. A job that started after that heartbeat was never visible in Redis (the
// at-least-once window in the README): the test counts those apart and prints every figure.
import { describe, expect, it } from 'vitest';
import { runChaos, summary, type ChaosPlan } from '../helpers/chaos.js';
import { killedAfterEach, logLines, startDrainInit } from '../helpers/pid1.js';
import { sidekiqCommand, sidekiqEnv, sidekiqTestBed } from '../helpers/sidekiq.js';

const PLAN: ChaosPlan = {
  jobs: 200,
  jobSeconds: [0.5, 5],
  killAfterMs: [1_000, 8_000],
  kills: 5,
  seed: 20_251_122,
  timeoutMs: 170_000,
};
const SIDEKIQ = sidekiqCommand({ concurrency: 10, timeoutS: 3 });
const DRAIN_INIT_ARGS = ['--instance-id', 'chaos', '--grace-period', '10s', '--probe-port', '0'];

describe('no job lost when the worker is SIGKILLed again and again', () => {
  const bed = sidekiqTestBed();
  const track = killedAfterEach();

  it('every job Redis showed running at a kill runs to its end; drain-init recovers them from its record', async () => {
    const env = sidekiqEnv({ redisUrl: bed.redis().url, markerDir: bed.markerDir(), logLevel: 'warn' });
    const start = () => track(startDrainInit([...DRAIN_INIT_ARGS, '--', ...SIDEKIQ], { env }));
    const result = await runChaos(bed.redis(), bed.markerDir(), PLAN, start, (line) => console.log(line));
    console.log(summary(result));

    // Not one job lost that Redis showed running; none lost in any other way.
    expect(result.lostSeen).toEqual([]);
    expect(result.lostOtherwise).toEqual([]);
    // The run tested recovery: kills caught jobs that Redis showed running, and drain-init requeued them.
    expect(result.kills.flatMap((kill) => kill.seen).length).toBeGreaterThan(0);
    const log = result.initLogs.flatMap((stderr) => logLines(stderr));
    const requeued = log
      .filter((line) => line.msg === 'recovered the jobs of a dead worker')
      .reduce((sum, line) => sum + Number(line.requeued), 0);
    expect(requeued).toBeGreaterThan(0);
    // Each kill left drain-init to recover and exit with the worker's 137, as a platform expects.
    expect(result.kills.map((kill) => kill.initExit)).toEqual(result.kills.map(() => 'exited 137'));
    // The worker is one Sidekiq process: never the ghost of the one before, whose pid it gets again.
    const found = log.filter((line) => line.msg === 'found the worker in Sidekiq');
    expect(found.filter((line) => (line.identities as unknown[]).length !== 1)).toEqual([]);
  }, 200_000);
});
