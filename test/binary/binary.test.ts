// The release executables (npm run build:binary), each as PID 1 of a root file system: Debian 12 and 11
// (the glibc build and the standalone one), musl only and empty (the standalone one; the glibc one says
// why it cannot start), with a read-only root as a non-root user, and the arm64 builds under qemu-user.
// In each: signals forwarded, exit codes passed on, 1,000 orphans reaped, the addon loaded from memory, the
// signal mask and ignored signals drain-init was started with given to the worker by the exec helper.
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PART, readParts } from '../../scripts/build/pack.ts';
import { V8_FLAGS } from '../../scripts/build/v8-flags.ts';
import { ROOT, killedAfterEach, logLines, startInit, waitFor, type Run } from '../helpers/pid1.js';
import {
  type RootKind,
  startInRoot,
  staticFixture,
  staticWorker,
  zombiesUnder,
  type InRootOptions,
} from '../helpers/rootfs.js';

const binary = (arch: string, variant: string): string => `${ROOT}dist/bin/drain-init-linux-${arch}-${variant}`;
const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64';
const WORKER = '/opt/pid1-worker';
const SIGNAL_STATE = '/opt/signal-state';
const ORPHANS = 1000;
/** A signal state to start drain-init with, as SigBlk and SigIgn print it: USR1 and USR2 blocked, HUP and QUIT ignored. */
const BLOCKED = '0000000000000a00';
const IGNORED = '0000000000000005';

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

  it("runs with drain-init's V8 heap flags, from its single-executable configuration", async () => {
    const exited = await finished(['exit', '0']);
    expect(exited.log.find((line) => line.msg === 'drain-init starting')?.execArgv).toEqual(V8_FLAGS);
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

/** drain-init started with BLOCKED and IGNORED: the worker gets them through the exec helper, and not the variable. */
function signalStateCheck(start: (args: readonly string[], via: readonly string[]) => Run): void {
  it('gives the worker the signal mask and ignored signals it was started with, through its exec helper', async () => {
    const via = [SIGNAL_STATE, 'with', BLOCKED, IGNORED, '--'];
    const { code, stdout, stderr } = await tracked(start(['--', SIGNAL_STATE, 'status'], via)).done;
    expect(code, stderr).toBe(0);
    expect(stdout.trim()).toBe(`STATE ${BLOCKED} ${IGNORED} -`);
  });
}

/** Every check, in a root file system: drain-init and the static fixtures are in its /opt. */
function inRootChecks(kind: RootKind, variant: string, options: InRootOptions = {}): void {
  const start = (args: readonly string[], via: readonly string[] = []): Run =>
    startInRoot(kind, binary(ARCH, variant), args, { ...options, via });
  pid1Checks(start, WORKER);
  signalStateCheck(start);
}

const ELF_MAGIC = Buffer.from('\x7fELF', 'latin1');
const EM_AARCH64 = 183;
const ET_EXEC = 2;

/**
 * The exec helper a release file carries in its addon (drain_init.c includes it whole): the static
 * executable for `machine` inside the addon part, as long as its ELF header says (section headers last).
 */
function embeddedExecHelper(release: string, machine: number): Buffer {
  const part = readParts(release).find((candidate) => candidate.kind === PART.addon);
  if (part === undefined) throw new Error(`${release}: no addon`);
  const addon = Buffer.alloc(part.size);
  const fd = openSync(release, 'r');
  try {
    readSync(fd, addon, 0, part.size, part.offset);
  } finally {
    closeSync(fd);
  }
  for (let at = addon.indexOf(ELF_MAGIC, 1); at !== -1; at = addon.indexOf(ELF_MAGIC, at + 1)) {
    if (addon.readUInt16LE(at + 16) !== ET_EXEC || addon.readUInt16LE(at + 18) !== machine) continue;
    const sectionHeaders = Number(addon.readBigUInt64LE(at + 0x28));
    return addon.subarray(at, at + sectionHeaders + addon.readUInt16LE(at + 0x3a) * addon.readUInt16LE(at + 0x3c));
  }
  throw new Error(`${release}: no exec helper in its addon`);
}

describe.each([
  ['bookworm', 'Debian 12, glibc 2.36'],
  ['bullseye', 'Debian 11, glibc 2.31'],
] as const)('in %s (%s)', (kind, _description) => {
  describe.each(['glibc', 'standalone'])('the %s build', (variant) => inRootChecks(kind, variant));
});

describe.each([
  ['musl', 'musl and busybox only'],
  ['empty', 'nothing but drain-init and the worker'],
] as const)('in a root file system with %s (%s)', (kind, _description) => {
  describe('the standalone build', () => inRootChecks(kind, 'standalone'));

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
  ] as const)('in %s, the %s build', (kind, variant) => inRootChecks(kind, variant, { readOnly: true, user: 65534 }));
});

describe.each(['standalone', 'glibc'])('the arm64 %s build, under qemu-user', (variant) => {
  // qemu-user runs the arm64 drain-init as PID 1; the worker it starts is this machine's.
  const sysroot = variant === 'glibc' ? ['-L', '/usr/aarch64-linux-gnu'] : [];
  pid1Checks((args) => startInit(['qemu-aarch64', ...sysroot, binary('arm64', variant), ...args]), staticWorker('x64'));

  it('exists: setup builds it', () => {
    expect(existsSync(binary('arm64', variant))).toBe(true);
  });

  // qemu-user answers prctl(PR_GET_CHILD_SUBREAPER) with EINVAL.
  it('not as PID 1 and without -s: one warning that it cannot tell it is a subreaper, and the worker runs', async () => {
    const argv = ['qemu-aarch64', ...sysroot, binary('arm64', variant), '--', 'sh', '-c', 'exit 7'];
    const { code, stderr } = await tracked(startInit(argv, { asPid1: false })).done;
    expect(code, stderr).toBe(7);
    const warnings = logLines(stderr).filter((line) => line.level === 40);
    expect(warnings.map((line) => line.msg)).toEqual([
      'could not tell whether drain-init is a child subreaper: orphans may not be re-parented to drain-init; use -s or TINI_SUBREAPER',
    ]);
  });

  // Under qemu-user the host kernel runs what the arm64 drain-init execs, and cannot run its arm64 exec
  // helper (no binfmt_misc here): the helper it carries is run under qemu-user itself instead.
  it('carries an arm64 exec helper that gives the worker the signal state drain-init was started with', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drain-init-helper-'));
    try {
      const helper = join(dir, 'exec-helper');
      writeFileSync(helper, embeddedExecHelper(binary('arm64', variant), EM_AARCH64), { mode: 0o755 });
      const argv = ['qemu-aarch64', helper, BLOCKED, IGNORED, '0', staticFixture('signal-state', 'x64'), 'status'];
      const { code, stdout, stderr } = await tracked(startInit(argv, { asPid1: false })).done;
      expect(code, stderr).toBe(0);
      expect(stdout.trim()).toBe(`STATE ${BLOCKED} ${IGNORED} -`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
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
    'the %s build gives the worker the signal mask and ignored signals it was started with, not the variable that carried them',
    async (variant) => {
      const status = ['grep', '-E', '^Sig(Blk|Ign):', '/proc/self/status'];
      const expected = await run(withSignalState(status));
      expect(expected.stdout).not.toMatch(/SigBlk:\s+0{16}/);
      expect((await run(withSignalState([binary(ARCH, variant), '--', ...status]))).stdout).toBe(expected.stdout);
      const handed = await run(
        withSignalState([binary(ARCH, variant), '--', 'sh', '-c', 'echo "[$_DRAIN_INIT_INHERITED_SIGNALS]"']),
      );
      expect(handed.stdout).toBe('[]');
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
