// No job lost, end to end: 200 SleepJobs of 0.3 to 3 s on a real Sidekiq 6.4.1 (-c 10) under drain-init as
// PID 1, killed at random moments five times with no wait for a heartbeat, drain-init started again after
// each exit with the same --instance-id (as a platform restarts a container). Sidekiq's own fetch loses
// every job a SIGKILL catches, and a heartbeat mirror those fetched since the last beat; drain-init's Redis
// endpoint records each job as it leaves its queue, so not one is lost. Killed twice over: the worker alone
// (an OOM kill), and the whole PID namespace, drain-init with it (a container killed whole).
import { describe, expect, it } from 'vitest';
import { runChaos, summary, type ChaosPlan } from '../helpers/chaos.js';
import { killedAfterEach, logLines, startDrainInit } from '../helpers/pid1.js';
import { sidekiqCommand, sidekiqEnv, sidekiqTestBed } from '../helpers/sidekiq.js';

const PLAN: Omit<ChaosPlan, 'victim'> = {
  jobs: 200,
  jobSeconds: [0.3, 3],
  killAfterMs: [300, 4_000],
  kills: 5,
  seed: 20_261_204,
  timeoutMs: 170_000,
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

describe('no job lost when the worker is SIGKILLed again and again', () => {
  const bed = sidekiqTestBed();
  const track = killedAfterEach();

  it.each(['worker', 'namespace'] as const)(
    'killing the %s: every job runs to its end',
    async (victim) => {
      const env = sidekiqEnv({ redisUrl: bed.redis().url, markerDir: bed.markerDir(), logLevel: 'warn' });
      const start = () => track(startDrainInit([...DRAIN_INIT_ARGS, '--', ...SIDEKIQ], { env }));
      const result = await runChaos(bed.redis(), bed.markerDir(), { ...PLAN, victim }, start, (line) =>
        console.log(line),
      );
      console.log(summary(result));

      expect(result.lost).toEqual([]);
      // The run tested recovery: kills caught jobs in flight, some of them fetched since the worker's last
      // heartbeat (the ones a mirror of heartbeats cannot know), and drain-init requeued them.
      const caught = result.kills.flatMap((kill) => kill.inFlight);
      expect(caught.length).toBeGreaterThan(0);
      expect(caught.length).toBeGreaterThan(result.kills.flatMap((kill) => kill.seen).length);
      const log = result.initLogs.flatMap((stderr) => logLines(stderr));
      const requeued = log
        .filter((line) => line.msg === 'recovered the jobs of a dead worker')
        .reduce((sum, line) => sum + Number(line.requeued), 0);
      expect(requeued).toBeGreaterThanOrEqual(caught.length);
      expect(log.filter((line) => String(line.msg).startsWith('Redis endpoint for the worker'))).toHaveLength(
        PLAN.kills + 1,
      );
      if (victim === 'worker') {
        // drain-init recovered and exited with the worker's 137, as a platform expects.
        expect(result.kills.map((kill) => kill.initExit)).toEqual(result.kills.map(() => 'exited 137'));
      } else {
        // Each restart took over its dead predecessor's record at once, rather than after its heartbeat TTL.
        expect(log.filter((line) => String(line.msg).startsWith("took over this instance id's record"))).toHaveLength(
          PLAN.kills,
        );
      }
    },
    200_000,
  );
});
