import { spawn } from 'node:child_process';
import { isatty } from 'node:tty';
import type { Logger } from '../log/logger.js';
import { loadAddon } from '../native/addon.js';
import type { ChildExit } from './exit-status.js';
import {
  formatSignalSet,
  isDefaultSignalState,
  signalSetNames,
  takeInheritedSignals,
  type SignalState,
} from './inherited-signals.js';

export interface Child {
  /** Undefined when the command could not be started. */
  readonly pid: number | undefined;
  readonly exited: Promise<ChildExit>;
}

/** The exec helper's descriptor for an exec failure (the errno name); a successful exec closes it. */
const EXEC_ERROR_FD = 3;
const STDIN = 0;

interface WorkerStart {
  /** The signal state drain-init was started with, when it is not the default one. */
  readonly signals: SignalState | undefined;
  /** Where the exec helper runs from, when it was needed and could be made ready. */
  readonly helper: string | undefined;
}

let workerStart: WorkerStart = { signals: undefined, helper: undefined };

/**
 * Reads the signal state drain-init was started with and removes its variable, so that no worker sees it,
 * and makes the exec helper (src/native/exec_helper.c) ready when a worker will need it: to get that
 * state back, or to take the terminal. Call once, before the first spawnChild.
 */
export function prepareSpawning(log: Logger, env: NodeJS.ProcessEnv = process.env): void {
  const inherited = takeInheritedSignals(env);
  if (inherited.error !== undefined)
    log.warn(
      { err: inherited.error },
      'ignoring the inherited signal state handed over: the worker starts with the default one',
    );
  const signals = inherited.state === undefined || isDefaultSignalState(inherited.state) ? undefined : inherited.state;
  if (signals !== undefined)
    log.debug(
      { blocked: signalSetNames(signals.blocked), ignored: signalSetNames(signals.ignored) },
      'the worker gets the signal mask and ignored signals drain-init was started with',
    );
  let helper: string | undefined;
  if (signals !== undefined || isatty(STDIN)) {
    try {
      helper = loadAddon().addon.execHelperPath();
    } catch (error) {
      log.warn(
        { err: (error as Error).message },
        'no exec helper: the worker starts with the default signal state, and without the terminal',
      );
    }
  }
  workerStart = { signals, helper };
}

/**
 * Starts the worker with no shell, stdio inherited, environment (but for the variables `env` sets) and
 * arguments passed as they are.
 * It leads a process group of its own, so that -g and the final KILL reach every process it started
 * and never drain-init itself. With `foreground` (drain-init holds the terminal) that group becomes the
 * terminal's foreground, in drain-init's session; otherwise the worker leads a session of its own too.
 * The exec helper does what libuv cannot between its fork and the command's exec (the foreground, the
 * inherited signal state); without either to do, the command is started directly, at no extra cost.
 */
export function spawnChild(
  command: string,
  args: readonly string[],
  foreground = false,
  env: Readonly<Record<string, string>> = {},
): Child {
  const { signals, helper } = workerStart;
  const takesForeground = foreground && helper !== undefined;
  const viaHelper = helper !== undefined && (takesForeground || signals !== undefined);
  const subprocess = spawn(
    viaHelper ? helper : command,
    viaHelper
      ? [
          formatSignalSet(signals?.blocked ?? 0n),
          formatSignalSet(signals?.ignored ?? 0n),
          takesForeground ? '1' : '0',
          command,
          ...args,
        ]
      : args,
    {
      stdio: viaHelper ? ['inherit', 'inherit', 'inherit', 'pipe'] : 'inherit',
      detached: !takesForeground,
      env: Object.keys(env).length === 0 ? process.env : { ...process.env, ...env },
    },
  );
  let execError = '';
  subprocess.stdio[EXEC_ERROR_FD]?.on('data', (chunk: Buffer) => (execError += chunk.toString()));
  let spawnError: NodeJS.ErrnoException | undefined;
  subprocess.on('error', (error) => (spawnError ??= error));
  // 'close' comes once the worker has exited and the exec helper's descriptor is closed (by its exec).
  const exited = new Promise<ChildExit>((resolve) =>
    subprocess.on('close', (code, signal) => {
      if (execError !== '') resolve({ kind: 'spawn-failed', errno: execError, message: `${execError}: ${command}` });
      else if (spawnError !== undefined)
        resolve({ kind: 'spawn-failed', errno: spawnError.code ?? 'EUNKNOWN', message: spawnError.message });
      else if (signal !== null) resolve({ kind: 'signaled', signal });
      else resolve({ kind: 'exited', code: code ?? 0 });
    }),
  );
  return { pid: subprocess.pid, exited };
}
