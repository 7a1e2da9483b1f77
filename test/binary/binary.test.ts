// The release executables (npm run build:binary), each as PID 1 of a root file system: Debian 12 and 11
// (the glibc build and the standalone one), musl only and empty (the standalone one; the glibc one says
// why it cannot start), with a read-only root as a non-root user, and the arm64 builds under qemu-user.
// In each: signals forwarded, exit codes passed on, 1,000 orphans reaped, the addon loaded from memory.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ROOT, killedAfterEach, logLines, startInit, waitFor, type Run } from '../helpers/pid1.js';
import { type RootKind, startInRoot, staticWorker, zombiesUnder, type InRootOptions } from '../helpers/rootfs.js';

const binary = (arch: string, variant: string): string => `${ROOT}dist/bin/drain-init-linux-${arch}-${variant}`;
const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64';
const WORKER = '/opt/pid1-worker';
const ORPHANS = 1000;

const tracked = killedAfterEach();

/** The checks every build runs in every place it runs; `start` runs drain-init with the worker's path. */
function pid1Checks(start: (args: readonly string[]) => Run, worker: string): void {
  async function finished(args: readonly string[]) {
    const run = tracked(start(['--log-level', 'debug', '--', worker, ...args]));
    const done = await run.done;
    return { ...done, log: logLines(done.stderr) };
  }

  it('loads the addon from its memory file, passes on exit codes and 128 + the signal that killed the worker', async () => {
    const exited = await finished(['exit', '3']);
    expect(exited.code, exited.stderr).toBe(3);
    expect(exited.log.find((line) => line.msg === 'native addon loaded')?.path).toMatch(/^\/proc\/self\/fd\/\d+$/);
    expect((await finished(['kill', '9'])).code).toBe(137);
  });

  it('forwards signals to the worker', async () => {
    const run = tracked(start(['--', worker, 'signals']));
    await waitFor(() => run.stdout().includes('ready') || undefined, 'the worker to block its signals', 30_000);
    const pid = await run.pid();
    // One at a time: two signals pending at once may be passed on in either order.
    const expected = { SIGUSR1: 'got 10', SIGHUP: 'got 1', SIGWINCH: 'got 28' } as const;
    for (const [signal, line] of Object.entries(expected)) {
      process.kill(pid, signal);
      await waitFor(() => run.stdout().split('\n').includes(line) || undefined, `${signal} recorded by the worker`);
    }
    expect(run.stdout().match(/got \d+/g)).toEqual(Object.values(expected));
    process.kill(pid, 'SIGTERM');
    expect((await run.done).code).toBe(0);
  });

  it(`reaps ${ORPHANS} orphans: no zombie is left`, async () => {
    const run = tracked(start(['--log-level', 'debug', '--', worker, 'orphans', String(ORPHANS), '3']));
    await waitFor(() => run.stdout().includes(`orphaned ${ORPHANS}`) || undefined, 'the orphans', 60_000);
    const pid = await run.pid();
    await waitFor(() => zombiesUnder(pid) === 0 || undefined, 'no zombie left', 5_000);
    const { code, stderr } = await run.done;
    expect(code).toBe(0);
    expect(logLines(stderr).find((line) => line.msg === 'child exited')).toMatchObject({ zombiesReaped: ORPHANS });
  });
}

function inRoot(kind: RootKind, variant: string, options: InRootOptions = {}) {
  return (args: readonly string[]): Run => startInRoot(kind, binary(ARCH, variant), args, options);
}

describe.each([
  ['bookworm', 'Debian 12, glibc 2.36'],
  ['bullseye', 'Debian 11, glibc 2.31'],
] as const)('in %s (%s)', (kind, _description) => {
  describe.each(['glibc', 'standalone'])('the %s build', (variant) => pid1Checks(inRoot(kind, variant), WORKER));
});

describe.each([
  ['musl', 'musl and busybox only'],
  ['empty', 'nothing but drain-init and the worker'],
] as const)('in a root file system with %s (%s)', (kind, _description) => {
  describe('the standalone build', () => pid1Checks(inRoot(kind, 'standalone'), WORKER));

  it('the glibc build does not start, and says which build does', async () => {
    const { code, stderr } = await tracked(startInRoot(kind, binary(ARCH, 'glibc'), ['--', WORKER, 'exit', '0'])).done;
    expect(code).toBe(127);
    expect(stderr).toMatch(/^drain-init: cannot start: .*glibc.*use the standalone build/);
  });
});

describe('a read-only root file system, as a non-root user (nobody)', () => {
  describe.each([
    ['bookworm', 'glibc'],
    ['empty', 'standalone'],
  ] as const)('in %s, the %s build', (kind, variant) =>
    pid1Checks(inRoot(kind, variant, { readOnly: true, user: 65534 }), WORKER),
  );
});

describe.each(['standalone', 'glibc'])('the arm64 %s build, under qemu-user', (variant) => {
  // qemu-user runs the arm64 drain-init as PID 1; the worker it starts is this machine's.
  const sysroot = variant === 'glibc' ? ['-L', '/usr/aarch64-linux-gnu'] : [];
  pid1Checks((args) => startInit(['qemu-aarch64', ...sysroot, binary('arm64', variant), ...args]), staticWorker('x64'));

  it('exists: setup builds it', () => {
    expect(existsSync(binary('arm64', variant))).toBe(true);
  });
});

describe('what the launcher hands on', () => {
  const run = async (argv: readonly string[], env: Record<string, string> = {}) => {
    const { code, stdout } = await tracked(startInit(argv, { asPid1: false, env })).done;
    return { code, stdout: stdout.trim() };
  };
  // Python blocks USR1 and TERM and ignores QUIT (it ignores PIPE and XFSZ itself), then execs argv.
  const withSignalState = (argv: readonly string[]): string[] => [
    'python3',
    '-c',
    'import os, signal, sys; signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1, signal.SIGTERM]); ' +
      'signal.signal(signal.SIGQUIT, signal.SIG_IGN); os.execvp(sys.argv[1], sys.argv[1:])',
    ...argv,
  ];

  it.each(['glibc', 'standalone'])(
    'the %s build records the signal mask and ignored signals it was started with, as /proc/self/status has them',
    async (variant) => {
      const status = await run(withSignalState(['grep', '-E', '^Sig(Blk|Ign):', '/proc/self/status']));
      const [blocked, ignored] = status.stdout.split('\n').map((line) => line.split('\t')[1]);
      expect(blocked).not.toBe('0000000000000000');
      const recorded = await run(
        withSignalState([binary(ARCH, variant), '--', 'sh', '-c', 'echo "$_DRAIN_INIT_INHERITED_SIGNALS"']),
      );
      expect(recorded.stdout).toBe(`${blocked}:${ignored}`);
    },
  );

  it("the glibc build ignores a caller's _DRAIN_INIT_LD_PRELOAD: only the launcher's own is taken", async () => {
    const { stdout } = await run([binary(ARCH, 'glibc'), '--', 'sh', '-c', 'echo "[$LD_PRELOAD]"'], {
      _DRAIN_INIT_LD_PRELOAD: '/nonexistent/libcaller.so',
    });
    expect(stdout).toBe('[]');
  });

  it('NODE_OPTIONS, meant for a Node worker, does not reach drain-init', async () => {
    const { code } = await run([binary(ARCH, 'glibc'), '--', 'sh', '-c', 'exit 4'], {
      NODE_OPTIONS: '--require /nonexistent/module.js',
    });
    expect(code).toBe(4);
  });

  it("the standalone build's own preload is not the worker's: the caller's LD_PRELOAD is", async () => {
    // A library that does not exist: the loader warns and goes on, in drain-init's place and the worker's.
    const { stdout } = await run([binary(ARCH, 'standalone'), '--', 'sh', '-c', 'echo "[$LD_PRELOAD]"'], {
      LD_PRELOAD: '/nonexistent/libcaller.so',
    });
    expect(stdout).toBe('[/nonexistent/libcaller.so]');
  });
});
