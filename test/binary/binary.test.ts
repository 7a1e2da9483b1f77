// The single executables (npm run build:binary): each runs as PID 1 with its embedded native addon,
// also where the root file system is read-only, and the arm64 one under qemu.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ROOT, killedAfterEach, logLines, startInit } from '../helpers/pid1.js';

const BINARY = `${ROOT}dist/bin/drain-init-linux-${process.arch}`;
const ARM64 = `${ROOT}dist/bin/drain-init-linux-arm64`;
const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';
/** Orphans that exit at once, then the worker lingers so drain-init reaps them before it exits. */
const LEAVE_ORPHANS = ['sh', '-c', 'for i in 1 2 3 4 5; do (sleep 0.1 &); done; sleep 1'];

const tracked = killedAfterEach();

/** Runs argv as PID 1 of new PID and mount namespaces, after `mounts` (shell commands) ran in it. */
async function runAsPid1(mounts: string, argv: readonly string[], env: Record<string, string> = {}) {
  const run = tracked(startInit(['sh', '-c', `${mounts} exec "$@"`, 'sh', ...argv], { env }));
  const done = await run.done;
  return { ...done, log: logLines(done.stderr) };
}

describe(`the ${process.arch} binary`, () => {
  it('exists: setup builds it (npm run build:binary)', () => {
    expect(existsSync(BINARY), `${BINARY} missing: run npm run build:binary`).toBe(true);
  });

  it('runs as PID 1 with its embedded addon and reaps orphans', async () => {
    const { code, log } = await runAsPid1('', [BINARY, '--log-level', 'debug', '--', ...LEAVE_ORPHANS]);
    expect(code).toBe(0);
    expect(log.find((line) => line.msg === 'native addon loaded')?.path).toMatch(
      /^\/tmp\/drain-init-\w+\/drain_init\.node$/,
    );
    expect(log.find((line) => line.msg === 'child exited')).toMatchObject({ exitCode: 0, zombiesReaped: 5 });
  });

  it('gives the worker the signal state its launcher hands over, through the exec helper of its embedded addon', async () => {
    const { code, stdout } = await runAsPid1('', [BINARY, '--', 'grep', '-E', '^Sig(Blk|Ign)', '/proc/self/status'], {
      _DRAIN_INIT_INHERITED_SIGNALS: '0000000000000200:0000000000000001',
    });
    expect(code).toBe(0);
    expect(stdout).toBe('SigBlk:\t0000000000000200\nSigIgn:\t0000000000000001\n');
  });

  it('with /tmp read-only, writes the addon to TMPDIR', async () => {
    const mounts = 'mount -t tmpfs -o ro tmpfs /tmp; mkdir -p /run/scratch && mount -t tmpfs tmpfs /run/scratch;';
    const { log } = await runAsPid1(mounts, [BINARY, '--log-level', 'debug', '--', ...LEAVE_ORPHANS], {
      TMPDIR: '/run/scratch',
    });
    expect(log.find((line) => line.msg === 'native addon loaded')?.path).toMatch(
      /^\/run\/scratch\/drain-init-\w+\/drain_init\.node$/,
    );
    expect(log.find((line) => line.msg === 'child exited')).toMatchObject({ zombiesReaped: 5 });
  });

  it('with nowhere writable and executable: one warning naming each place and why, and the worker still runs', async () => {
    const mounts = [
      'mount -t tmpfs -o noexec tmpfs /mnt;',
      'for dir in /tmp /dev/shm /run; do mount -t tmpfs -o ro tmpfs $dir; done;',
      'mount -o remount,bind,ro /dev;',
    ].join(' ');
    const { code, log, stderr } = await runAsPid1(mounts, [BINARY, '--', 'sh', '-c', 'exit 3'], { TMPDIR: '/mnt' });
    expect(code).toBe(3);
    const warning = log.find((line) => line.msg === 'native addon not loaded: orphaned processes will not be reaped');
    expect(String(warning?.err)).toMatch(
      /^no directory to write the embedded drain_init\.node to and load it from \(\/mnt: .*failed to map segment.*; \/tmp: EROFS.*; \/dev\/shm: EROFS.*; \/run: EROFS.*; \/dev: EROFS.*\): mount a writable tmpfs/,
    );
    expect(stderr.split('\n').filter((line) => line.includes('native addon')).length).toBe(1);
  });
});

describe('the arm64 binary, under qemu-user', () => {
  it('runs as PID 1 with its own (cross-compiled) addon and reaps orphans', async () => {
    expect(existsSync(ARM64), `${ARM64} missing: run npm run build:binary`).toBe(true);
    const { code, log } = await runAsPid1('', ['qemu-aarch64', '-L', ARM64_SYSROOT, ARM64, '--', ...LEAVE_ORPHANS]);
    expect(code).toBe(0);
    expect(log.find((line) => line.msg === 'child exited')).toMatchObject({ exitCode: 0, zombiesReaped: 5 });
  });
});
