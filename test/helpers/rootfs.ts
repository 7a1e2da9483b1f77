// Runs drain-init's release executables as PID 1 of root file systems other than the host's: Debian 12
// and 11 and a musl-only one (made once per machine by scripts/rootfs.sh), and an empty one holding
// nothing but drain-init and static fixtures (made here).
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, childOf, startInit, waitFor, type Run } from './pid1.js';

export type RootKind = 'bookworm' | 'bullseye' | 'musl' | 'empty';
export type Arch = 'x64' | 'arm64';

/** scripts/rootfs.sh's cache. */
export const ROOTFS_CACHE = process.env.ROOTFS_CACHE ?? '/var/cache/drain-init/rootfs';
const COMPILER: Record<Arch, string> = { x64: 'x86_64-linux-gnu-gcc', arm64: 'aarch64-linux-gnu-gcc' };
/** The static fixtures placed in /opt of every root file system, by their file name there. */
const IN_ROOT = ['pid1-worker', 'signal-state'] as const;

/** test/fixtures/<name>.c built static for the architecture (once, into .cache/test/). */
export function staticFixture(name: (typeof IN_ROOT)[number], arch: Arch): string {
  const source = `${ROOT}test/fixtures/${name}.c`;
  const out = `${ROOT}.cache/test/${name}-${arch}`;
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(source).mtimeMs) return out;
  mkdirSync(`${ROOT}.cache/test`, { recursive: true });
  execFileSync(COMPILER[arch], ['-static', '-O2', '-Wall', '-Wextra', '-o', out, source]);
  return out;
}

/** test/fixtures/pid1-worker.c, static. */
export function staticWorker(arch: Arch): string {
  return staticFixture('pid1-worker', arch);
}

/** Hard-links (or copies, across file systems) file into dir. */
function place(file: string, dir: string, name: string): void {
  try {
    linkSync(file, join(dir, name));
  } catch {
    copyFileSync(file, join(dir, name));
  }
}

export interface InRootOptions {
  /** The root file system mounted read-only (drain-init's directory too). */
  readonly readOnly?: boolean;
  /** uid and gid to run as (unshare --setuid/--setgid). */
  readonly user?: number;
  /** A command of the root file system that execs drain-init, which then runs as PID 1 (/opt/signal-state with ...). */
  readonly via?: readonly string[];
}

/**
 * Starts `/opt/drain-init args...` as PID 1 in the root file system: the cached one, or for 'empty' a new
 * directory holding only /opt (drain-init, pid1-worker, signal-state) and the /proc mount point. drain-init
 * and the fixtures (x64, static) are bind-mounted on its /opt in a mount namespace of the test's own: the
 * cached root file system is never written to. The run's pid() is drain-init's host pid, PID 1 of its
 * namespace.
 */
export function startInRoot(kind: RootKind, binary: string, args: readonly string[], options: InRootOptions = {}): Run {
  // Readable by the user the test may run drain-init as (mkdtemp makes them private to root).
  const opt = mkdtempSync(join(tmpdir(), 'drain-init-opt-'));
  chmodSync(opt, 0o755);
  place(binary, opt, 'drain-init');
  for (const name of IN_ROOT) place(staticFixture(name, 'x64'), opt, name);
  let root: string;
  if (kind === 'empty') {
    root = mkdtempSync(join(tmpdir(), 'drain-init-empty-root-'));
    chmodSync(root, 0o755);
    mkdirSync(join(root, 'proc'));
    mkdirSync(join(root, 'opt'));
  } else {
    root = join(ROOTFS_CACHE, kind);
    if (!existsSync(join(root, 'opt')))
      throw new Error(`${root} is missing: bash scripts/rootfs.sh makes it (scripts/setup.sh runs it)`);
  }
  const readOnly =
    options.readOnly === true ? 'mount -o remount,bind,ro "$1" && mount -o remount,bind,ro "$1/opt" && ' : '';
  const user = options.user === undefined ? [] : ['--setuid', String(options.user), '--setgid', String(options.user)];
  const script =
    'mount --bind "$1" "$1" && mount --bind "$2" "$1/opt" && ' +
    readOnly +
    'root=$1 && shift 2 && exec unshare --pid --fork --mount-proc -R "$root" "$@"';
  const run = startInit(
    [
      'unshare',
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      script,
      'sh',
      root,
      opt,
      ...user,
      ...(options.via ?? []),
      '/opt/drain-init',
      ...args,
    ],
    { asPid1: false },
  );
  // The links (or copies) of drain-init and the fixtures, and an empty root, go when the run ends.
  void run.done.then(() => {
    rmSync(opt, { recursive: true, force: true });
    if (kind === 'empty') rmSync(root, { recursive: true, force: true });
  });
  // unshare --mount execs sh, which execs unshare --pid --fork: drain-init is the child of the first pid.
  const initPid = async (): Promise<number> => {
    const outer = await run.pid();
    return waitFor(() => childOf(outer), 'drain-init as PID 1');
  };
  return { ...run, pid: initPid };
}

/** How many descendants of pid are zombies (state Z), from the host's /proc. */
export function zombiesUnder(pid: number): number {
  const processes = new Map<number, { parent: number; zombie: boolean }>();
  for (const entry of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
      const [state, parent] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      processes.set(Number(entry), { parent: Number(parent), zombie: state === 'Z' });
    } catch {
      // it ended meanwhile
    }
  }
  const descends = (candidate: number): boolean => {
    for (
      let current = processes.get(candidate)?.parent;
      current !== undefined && current > 1;
      current = processes.get(current)?.parent
    )
      if (current === pid) return true;
    return false;
  };
  return [...processes].filter(([candidate, { zombie }]) => zombie && descends(candidate)).length;
}
