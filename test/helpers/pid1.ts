import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = `${ROOT}dist/main.mjs`;
/** What a user runs from a checkout or an npm install: the script that hands over the inherited signal state and starts Node. */
export const BIN = `${ROOT}bin/drain-init`;
export const FIXTURES = `${ROOT}test/fixtures/`;

export interface Run {
  readonly process: ChildProcess;
  /** Host pid of the init (PID 1 inside its namespace when asPid1). */
  readonly pid: () => Promise<number>;
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  readonly stderr: () => string;
  readonly stdout: () => string;
}

export interface RunOptions {
  readonly asPid1?: boolean;
  readonly env?: Record<string, string | undefined>;
  readonly input?: string | Buffer;
  readonly cwd?: string;
}

/** Starts drain-init as a user does (bin/drain-init), by default as PID 1 of a new PID namespace (unshare --pid --fork --mount-proc). */
export function startDrainInit(args: readonly string[], options: RunOptions = {}): Run {
  return startInit([BIN, ...args], options);
}

/** Starts any init's argv (drain-init, tini, dumb-init ...), by default as PID 1 of a new PID namespace. */
export function startInit(argv: readonly string[], options: RunOptions = {}): Run {
  const asPid1 = options.asPid1 ?? true;
  const [program, ...rest] = argv;
  if (program === undefined) throw new Error('empty argv');
  const command = asPid1 ? 'unshare' : program;
  const commandArgs = asPid1 ? ['--pid', '--fork', '--mount-proc', ...argv] : rest;
  const child = spawn(command, commandArgs, {
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    cwd: options.cwd,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  if (options.input !== undefined) child.stdin.end(options.input);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) => {
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    },
  );
  const pid = async (): Promise<number> => {
    const outer = child.pid;
    if (outer === undefined) throw new Error('the init did not start');
    if (!asPid1) return outer;
    return waitFor(() => childOf(outer), 'the PID namespace init');
  };
  return { process: child, pid, done, stderr: () => stderr, stdout: () => stdout };
}

/** The first child of a process (host pids), such as the worker of an init run as PID 1; undefined while it has none. */
export function childOf(pid: number): number | undefined {
  try {
    const listed = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return listed === '' ? undefined : Number(listed.split(' ')[0]);
  } catch {
    return undefined;
  }
}

/** Registers an afterEach that kills every run the returned function was given and that is still going. */
export function killedAfterEach(): (run: Run) => Run {
  const running: Run[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map(killRun));
  });
  return (run) => {
    running.push(run);
    return run;
  };
}

/** A path in a new temporary directory. */
export function tempPath(name: string): string {
  return join(mkdtempSync(join(tmpdir(), 'drain-init-')), name);
}

/** SIGKILLs a run that is still going (as PID 1: its namespace's init, so the kernel kills the rest) and waits for its end. */
export async function killRun(run: Run): Promise<void> {
  if (run.process.exitCode === null && run.process.signalCode === null) {
    const pid = (await run.pid().catch(() => undefined)) ?? run.process.pid;
    try {
      if (pid !== undefined && pid > 0) process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await run.done;
}

export interface PlatformStop {
  /** ms from the SIGTERM until the init's end (its stdout and stderr closed). */
  readonly stopMs: number;
  /** The init still ran when the grace period was over and got the platform's SIGKILL. */
  readonly killedAtDeadline: boolean;
  /** As the run's `done` has them: unshare's own status (util-linux 2.38 exits 1 when its child was SIGKILLed). */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/**
 * Plays the platform (Kubernetes, ECS ...): SIGTERM to the init at T0, SIGKILL to it at T0 + graceMs if it
 * still runs. `onSignal` is called right after each signal is sent.
 */
export async function stopLikePlatform(
  run: Run,
  graceMs: number,
  onSignal: (signal: 'SIGTERM' | 'SIGKILL') => void = () => {},
): Promise<PlatformStop> {
  const pid = await run.pid();
  const t0 = performance.now();
  process.kill(pid, 'SIGTERM');
  onSignal('SIGTERM');
  let killedAtDeadline = false;
  const deadline = setTimeout(() => {
    try {
      process.kill(pid, 'SIGKILL');
      killedAtDeadline = true;
      onSignal('SIGKILL');
    } catch {
      // it ended just now
    }
  }, graceMs);
  const { code, signal } = await run.done;
  const stopMs = performance.now() - t0;
  clearTimeout(deadline);
  return { stopMs, killedAtDeadline, code, signal };
}

/** Polls until `probe` returns a value, for at most `timeoutMs`. */
export async function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let value: T | undefined;
    try {
      value = probe();
    } catch {
      value = undefined;
    }
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Polls an async `probe` until it resolves to a value (not undefined), for at most `timeoutMs`; a rejection counts as none. */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 10_000,
  pollMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** The signals a recorder (recorder.py, signal-state record) wrote: `SIGNAME <monotonic ms>` lines (after `READY <pid> <ms>`). */
export function recorded(file: string): { name: string; at: number }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('SIG'))
    .map((line) => {
      const [name = '', at = '0'] = line.split(' ');
      return { name, at: Number(at) };
    });
}

/** JSON log lines drain-init wrote to stderr. */
export function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const compiled = new Map<string, string>();

/** A C program of test/fixtures compiled with cc (once per test file), as the path to run it by. */
export function compiledFixture(name: string): string {
  let binary = compiled.get(name);
  if (binary === undefined) {
    binary = tempPath(name);
    execFileSync('cc', ['-O2', '-Wall', '-o', binary, `${FIXTURES}${name}.c`], { stdio: ['ignore', 'ignore', 'pipe'] });
    compiled.set(name, binary);
  }
  return binary;
}
