import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { processState } from '../../src/process/proc.js';
import { BIN, CLI, FIXTURES, compiledFixture, killedAfterEach, startInit, waitFor, type Run } from '../helpers/pid1.js';

const ON_PTY = `${FIXTURES}on-pty.py`;
const track = killedAfterEach();

/**
 * drain-init as PID 1 of a PID namespace, on a new pseudo-terminal that is its controlling terminal (docker run
 * -it), started by `launcher` if given. It runs as bin/drain-init, as a user runs it, which hands over the signal
 * state it was started with (node dist/main.mjs alone would not). Its log is asked for as JSON, which these tests
 * read, unless `json` is false: what it logs on a terminal by default is tested on its own below.
 */
function onTerminal(
  args: readonly string[],
  {
    controlling = true,
    json = true,
    launcher = [],
  }: { controlling?: boolean; json?: boolean; launcher?: string[] } = {},
): Run {
  const pty = [ON_PTY, ...(controlling ? [] : ['--no-ctty']), '--'];
  const init = [...launcher, BIN, ...(json ? ['--log-format', 'json'] : []), ...args];
  return track(
    startInit(['python3', ...pty, 'unshare', '--pid', '--fork', '--mount-proc', ...init], { asPid1: false }),
  );
}

function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
}

/** Host pids of drain-init (below on-pty.py and unshare) and of its worker, once the worker runs. */
async function initAndWorker(run: Run): Promise<{ init: number; worker: number }> {
  await waitFor(() => run.stdout().includes('ready'), 'the worker');
  const pending = [await run.pid()];
  for (let pid = pending.pop(); pid !== undefined; pid = pending.pop()) {
    const [worker] = childrenOf(pid);
    if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(CLI) && worker !== undefined)
      return { init: pid, worker };
    pending.push(...childrenOf(pid));
  }
  throw new Error('drain-init not found');
}

/** drain-init's log lines in what the terminal showed (its echo, ^C, can share a line). */
function terminalLogs(run: Run): Record<string, unknown>[] {
  return run
    .stdout()
    .split('\n')
    .flatMap((line) => {
      const at = line.indexOf('{"level"');
      return at === -1 ? [] : [JSON.parse(line.slice(at)) as Record<string, unknown>];
    });
}

const messages = (run: Run) => terminalLogs(run).map((line) => String(line.msg));
const RESUMED = 'resumed it with SIGCONT';
const READY = ['--', 'sh', '-c', 'echo ready; exec sleep 60'];
const type = (run: Run, keys: string) => run.process.stdin?.write(keys);

describe('on a terminal (docker run -it), as PID 1', () => {
  it('says nothing of a normal start and exit, and writes a warning as a readable line, as tini is quiet', async () => {
    const quiet = await onTerminal(['--', 'sh', '-c', 'echo hello; exit 3'], { json: false }).done;
    expect(quiet.code).toBe(3);
    expect(quiet.stdout.replaceAll('\r', '').trim()).toBe('hello');

    const run = onTerminal(READY, { json: false });
    const { init } = await initAndWorker(run);
    process.kill(init, 'SIGTSTP');
    await waitFor(() => run.stdout().includes(RESUMED), 'the warning');
    process.kill(init, 'SIGTERM');
    await run.done;
    const warning =
      run
        .stdout()
        .split('\n')
        .find((line) => line.includes(RESUMED)) ?? '';
    expect(warning).toMatch(/^\S+Z WARN  the worker was suspended/);
    expect(run.stdout()).not.toContain('{"level"');
  });

  it("makes the worker's own process group the terminal's foreground", async () => {
    const probe = 'import os; print("FG", os.getpid(), os.getpgrp(), os.tcgetpgrp(0), os.getsid(0) != os.getpid())';
    const result = await onTerminal(['--', 'python3', '-c', probe]).done;
    expect(result.code).toBe(0);
    const [pid, group, foreground, inDrainInitsSession] =
      /FG (\d+) (\d+) (\d+) (\w+)/.exec(result.stdout)?.slice(1) ?? [];
    expect(group).toBe(pid);
    expect(foreground).toBe(pid);
    expect(inDrainInitsSession).toBe('True');
  });

  it('gives the worker the signal mask drain-init was started with, through the same exec helper', async () => {
    const blockedUsr1 = (1 << 9).toString(16).padStart(16, '0');
    const probe =
      'import os, re; blk = re.search(r"SigBlk:\\s*(\\w+)", open("/proc/self/status").read()).group(1); ' +
      'print("FG", os.getpid() == os.tcgetpgrp(0), blk)';
    const launcher = [compiledFixture('signal-state'), 'with', blockedUsr1, '0', '--'];
    const result = await onTerminal(['--', 'python3', '-c', probe], { launcher }).done;
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`FG True ${blockedUsr1}`);
  });

  it('sends Ctrl-C to the worker, not to drain-init', async () => {
    const run = onTerminal(READY);
    await waitFor(() => run.stdout().includes('ready'), 'the worker');
    type(run, '\x03');
    const result = await run.done;
    expect(result.code).toBe(130);
    expect(messages(run).some((message) => message.startsWith('stop requested'))).toBe(false);
    expect(terminalLogs(run).find((line) => line.msg === 'child killed by signal')?.signal).toBe('SIGINT');
  });

  it('resumes within 1 s a worker without a TSTP handler that Ctrl-Z or a forwarded TSTP suspended', async () => {
    const run = onTerminal(READY);
    const { init, worker } = await initAndWorker(run);
    const suspend: [string, () => void][] = [
      ['Ctrl-Z', () => type(run, '\x1a')],
      ['a TSTP sent to drain-init', () => process.kill(init, 'SIGTSTP')],
    ];
    for (const [index, [how, send]] of suspend.entries()) {
      send();
      await waitFor(
        () => messages(run).filter((message) => message.includes(RESUMED)).length === index + 1,
        `the resume after ${how}`,
        1_000,
      );
      expect(['S', 'R']).toContain(processState(worker));
    }
  });

  it('leaves it suspended with --job-control until a stop begins', async () => {
    const run = onTerminal(['--job-control', ...READY]);
    const { init, worker } = await initAndWorker(run);
    type(run, '\x1a');
    await waitFor(
      () => messages(run).some((message) => message.includes('left suspended (--job-control)')),
      'the notice',
    );
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(processState(worker)).toBe('T');
    process.kill(init, 'SIGTERM');
    const result = await run.done;
    expect(result.code).toBe(143);
    expect(messages(run).some((message) => message.includes(RESUMED))).toBe(true);
  });

  it('reports a command that is not found as it does without a terminal', async () => {
    const result = await onTerminal(['--', 'no-such-command-here']).done;
    expect(result.code).toBe(127);
    expect(messages({ stdout: () => result.stdout } as Run)).toContain('command not found: no-such-command-here');
  });

  it('takes a terminal that is not its controlling terminal as no terminal, without an error', async () => {
    const probe = 'import os; print("SESSION", os.getsid(0) == os.getpid())';
    const result = await onTerminal(['--', 'python3', '-c', probe], { controlling: false }).done;
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('SESSION True');
    const levels = terminalLogs({ stdout: () => result.stdout } as Run).map((line) => Number(line.level));
    expect(levels.every((level) => level < 50)).toBe(true);
  });
});
