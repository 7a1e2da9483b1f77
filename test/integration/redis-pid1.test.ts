import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURES, killedAfterEach, logLines, startDrainInit, tempPath, waitFor } from '../helpers/pid1.js';
import { startRedis, type RedisServer } from '../helpers/redis.js';

const RECORDER = `${FIXTURES}recorder.py`;
const PASSWORD = 's3cret-Pa55word';
let redis: RedisServer;
const track = killedAfterEach();

beforeAll(async () => {
  redis = await startRedis({ password: PASSWORD });
});
afterAll(async () => {
  await redis.stop();
});

async function record(id: string): Promise<Record<string, string>> {
  const flat = await redis.call('HGETALL', `drain-init:instance:${id}`);
  const fields: Record<string, string> = {};
  if (Array.isArray(flat))
    for (let index = 0; index + 1 < flat.length; index += 2) fields[String(flat[index])] = String(flat[index + 1]);
  return fields;
}

/** Polls the record every 5 ms until its state is `state`. */
async function recordInState(id: string, state: string, timeoutMs: number): Promise<Record<string, string>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const fields = await record(id);
    if (fields.state === state) return fields;
    if (Date.now() > deadline) throw new Error(`record ${id} never reached ${state}: ${JSON.stringify(fields)}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function startWorker(id: string, env: Record<string, string>) {
  const file = tempPath('signals');
  // A generic worker with Sidekiq's stop signals: the recorder never registers with Sidekiq, and the sidekiq
  // preset would rightly skip the quiet step for a worker that has not registered.
  const args = [
    '--preset',
    'generic',
    '--quiet-signal',
    'TSTP',
    '--stop-signal',
    'TERM',
    '--grace-period',
    '3s',
    '--shutdown-timeout',
    '1s',
    '--stop-margin',
    '500ms',
    '--kill-margin',
    '500ms',
  ];
  const run = startDrainInit(
    [...args, '--instance-id', id, '--heartbeat-interval', '500ms', '--', RECORDER, file, '--secret-arg'],
    { env },
  );
  track(run);
  await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('READY'), 'the worker');
  return { run, pid: await run.pid() };
}

describe('the Redis record of drain-init as PID 1', () => {
  it('is written from REDIS_URL, follows the stop within 100 ms, ends as exited, and never shows the password', async () => {
    const { run, pid } = await startWorker('pid1-a', { REDIS_URL: redis.url });
    let fields = await recordInState('pid1-a', 'running', 10_000);
    const started = logLines(run.stderr()).find((line) => line.msg === 'started child');
    expect(fields).toMatchObject({
      state: 'running',
      pid: '1',
      program: RECORDER,
      childPid: String(started?.childPid),
    });
    expect(JSON.stringify(fields)).not.toContain('--secret-arg');
    const ttl = Number(await redis.command('PTTL', 'drain-init:instance:pid1-a'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(1_500);

    process.kill(pid, 'SIGTERM');
    // Read before the TERM at +1.5 s; how soon the write followed the stop is told by drain-init's own times
    // (the deadline is the SIGTERM's arrival plus the 3 s grace period), not by this busy test's clock.
    fields = await recordInState('pid1-a', 'quieting', 1_400);
    expect(Number(fields.lastBeat) - (Number(fields.deadline) - 3_000)).toBeLessThan(100);
    expect(fields.stopPlan).toBe('TSTP now, TERM at +1.5 s, KILL at +2.5 s, deadline at +3.0 s');
    expect(Number(fields.deadline) - Number(fields.lastBeat)).toBeGreaterThan(2_500);

    const result = await run.done;
    expect(result.code).toBe(137);
    fields = await record('pid1-a');
    expect(fields).toMatchObject({ state: 'exited', lastExit: 'signal SIGKILL' });
    expect(`${result.stdout}${result.stderr}`).not.toContain(PASSWORD);
    expect(result.stderr).toContain('***');
  });

  it('runs the worker on when Redis is down at start, logging the outage once', async () => {
    const down = redis.url.replace(`:${redis.port}`, ':1');
    const { run, pid } = await startWorker('pid1-b', { DRAIN_INIT_REDIS_URL: down });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    process.kill(pid, 'SIGUSR1');
    await waitFor(() => logLines(run.stderr()).some((line) => line.msg === 'forwarded signal'), 'the forward');
    process.kill(pid, 'SIGKILL');
    const result = await run.done;
    // The worker has no REDIS_URL here: the warning that it gets no Redis endpoint is about that, not the outage.
    const outages = logLines(result.stderr).filter(
      (line) =>
        line.level === 40 &&
        String(line.msg).toLowerCase().includes('redis') &&
        !String(line.msg).startsWith('no Redis endpoint for the worker'),
    );
    expect(outages).toHaveLength(1);
    expect(result.stderr).not.toContain(PASSWORD);
  });
});
