// The fleet's platform stops in a real Redis: drain-init as PID 1 marks its stop, unmarks it when the
// worker exits in time, counts it when its own kill step comes, and a stop whose drain-init the platform
// killed first is counted by the next scrape of any drain-init once its deadline has passed.
import { describe, expect, it } from 'vitest';
import { END_SLACK_MS } from '../../src/fleet/stops.js';
import { parseExposition } from '../helpers/exposition.js';
import { killedAfterEach, stopLikePlatform, waitFor } from '../helpers/pid1.js';
import { probeRequest, startWithProbe } from '../helpers/probe.js';
import { redisTestBed } from '../helpers/redis.js';

const track = killedAfterEach();
const IGNORES_TERM = ['sh', '-c', 'trap "" TERM; while :; do sleep 0.1; done'];

async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function stopsCut(port: number): Promise<number | undefined> {
  const families = parseExposition((await probeRequest(port, '/metrics')).body);
  return families.get('drain_init_stops_cut_total')?.samples[0]?.value;
}

describe("the fleet's platform stops", () => {
  const redis = redisTestBed();

  async function start(id: string, args: readonly string[], worker: readonly string[]) {
    const { run, port } = await startWithProbe([
      ...['--redis-url', redis().url, '--instance-id', id, ...args],
      '--',
      ...worker,
    ]);
    track(run);
    await waitFor(() => run.stderr().includes('"connected to Redis"') || undefined, 'Redis');
    return { run, port };
  }

  it('marks a stop as it begins and unmarks it when the worker exits in time: nothing counted', async () => {
    const { run, port } = await start('in-time', ['--grace-period', '5s'], ['sleep', '60']);
    await until(async () => (await stopsCut(port)) !== undefined, 'the count');
    expect(await stopsCut(port)).toBe(0);
    process.kill(await run.pid(), 'SIGTERM');
    await run.done;
    expect(await redis().call('HLEN', 'drain-init:stops')).toBe(0);
    expect(await redis().command('GET', 'drain-init:stops-cut')).toBe('');
  });

  it("counts a stop whose kill step came, and every pod serves the fleet's count", async () => {
    const { run } = await start('killed-at-deadline', ['--grace-period', '2s', '--kill-margin', '500ms'], IGNORES_TERM);
    process.kill(await run.pid(), 'SIGTERM');
    // The mark is there while the stop is under way.
    await until(
      async () => (await redis().call('HEXISTS', 'drain-init:stops', 'killed-at-deadline')) === 1,
      'the mark',
    );
    const result = await run.done;
    expect(result.code).toBe(137);
    expect(await redis().call('HLEN', 'drain-init:stops')).toBe(0);
    expect(await redis().command('GET', 'drain-init:stops-cut')).toBe('1');

    const other = await start('survivor', [], ['sleep', '60']);
    await until(async () => (await stopsCut(other.port)) !== undefined, 'the count');
    expect(await stopsCut(other.port)).toBe(1);
  });

  it("counts a stop the platform cut before drain-init's own kill, once its deadline has passed", async () => {
    // drain-init believes 3 s; the platform kills it after 1 s, so it can say nothing.
    const { run } = await start('cut-by-platform', ['--grace-period', '3s', '--kill-margin', '0s'], IGNORES_TERM);
    await stopLikePlatform(run, 1_000);
    expect(await redis().call('HEXISTS', 'drain-init:stops', 'cut-by-platform')).toBe(1);
    const other = await start('survivor', [], ['sleep', '60']);
    await until(async () => (await stopsCut(other.port)) !== undefined, 'the count');
    expect(await stopsCut(other.port)).toBe(0);
    // Counted at the first scrape after the deadline and the slack (the count is kept 5 s between scrapes).
    await new Promise((resolve) => setTimeout(resolve, 3_000 + END_SLACK_MS));
    await until(async () => (await stopsCut(other.port)) === 1, 'the cut stop counted');
    expect(await redis().call('HLEN', 'drain-init:stops')).toBe(0);
  }, 60_000);
});
