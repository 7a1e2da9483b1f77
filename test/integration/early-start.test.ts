// The worker starts before most of drain-init is loaded (src/supervisor/early.ts): what happens to the worker
// in its first moments must still be seen and acted on, as PID 1.
import { describe, expect, it } from 'vitest';
import { V8_FLAGS } from '../../scripts/build/v8-flags.ts';
import { killedAfterEach, logLines, startDrainInit, type Run } from '../helpers/pid1.js';

const track = killedAfterEach();
const messages = (run: Run) => logLines(run.stderr()).map((line) => String(line.msg));

describe('the first moments of the worker', () => {
  it('a SIGTERM the worker sends to PID 1 as it starts runs the stop', async () => {
    const run = track(startDrainInit(['--grace-period', '30s', '--', 'sh', '-c', 'kill -TERM 1; exec sleep 30']));
    const { code } = await run.done;
    expect(messages(run).some((message) => message.startsWith('stop requested'))).toBe(true);
    expect(code).toBe(143);
  });

  it('a worker that suspends itself as it starts is resumed', async () => {
    const run = track(startDrainInit(['--', 'sh', '-c', 'kill -STOP $$; echo resumed']));
    const { code, stdout } = await run.done;
    expect(stdout).toBe('resumed\n');
    expect(code).toBe(0);
    expect(messages(run).some((message) => message.includes('resumed it with SIGCONT'))).toBe(true);
  });

  it('the lines logged before the logger was loaded come first, in order', async () => {
    const run = track(startDrainInit(['--', 'true']));
    await run.done;
    const lines = messages(run);
    expect(lines[0]).toBe('drain-init starting');
    expect(lines.indexOf('drain-init starting')).toBeLessThan(lines.indexOf('started child'));
    expect(lines.at(-1)).toBe('child exited');
  });

  it("runs with drain-init's V8 heap flags, from bin/drain-init", async () => {
    const run = track(startDrainInit(['--', 'true']));
    await run.done;
    expect(logLines(run.stderr()).find((line) => line.msg === 'drain-init starting')?.execArgv).toEqual(V8_FLAGS);
  });

  it('the SIGCHLD handler reaps the orphans of the first worker itself: JavaScript hears of few of their exits', async () => {
    // Set up after the worker's fork, the handler would not know that fork and would leave every SIGCHLD to
    // JavaScript: one wake-up, and one "reaped zombies" line, per orphan.
    const orphans = 300;
    const script = `for i in $(seq ${orphans}); do (sleep 0.05 &); done; sleep 1.5`;
    const run = track(startDrainInit(['--log-level', 'debug', '--', 'sh', '-c', script]));
    const { code } = await run.done;
    expect(code).toBe(0);
    const lines = logLines(run.stderr());
    expect(lines.find((line) => line.msg === 'child exited')?.zombiesReaped).toBe(orphans);
    expect(lines.filter((line) => line.msg === 'reaped zombies').length).toBeLessThan(orphans / 10);
  });
});
