import { writeSync } from 'node:fs';
import { isSea } from 'node:sea';
import { loadAddon } from '../native/addon.js';

/**
 * The worker gets the terminal (`docker run -it`): it leads a process group of its own that is the
 * terminal's foreground, so Ctrl-C and Ctrl-Z reach it and not drain-init. That has to happen in the new
 * process before it execs the command, and Node runs no code of ours there; so drain-init runs itself
 * again in a hidden mode, the trampoline, that does it in the native addon and execs the command. Only
 * with a terminal: without one, the worker starts with no extra cost.
 */

/** The hidden first argument that makes drain-init the trampoline. */
export const FOREGROUND_EXEC = '--exec-in-foreground';
/** The trampoline's descriptor for an exec failure (the errno name); a successful exec closes it. */
export const EXEC_ERROR_FD = 3;

/** The command line that runs `command` through the trampoline. */
export function foregroundCommand(command: string, args: readonly string[]): { file: string; args: string[] } {
  // A single executable is its own script: its argv[1] repeats the executable's path.
  const script = isSea() ? [] : [process.argv[1] ?? ''];
  return { file: process.execPath, args: [...script, FOREGROUND_EXEC, command, ...args] };
}

/** The trampoline: execs the command in the foreground; returns drain-init's exit code only if that failed. */
export function execInForeground(argv: readonly string[]): number {
  const [command = '', ...args] = argv;
  try {
    loadAddon().addon.execInForeground(command, args, EXEC_ERROR_FD);
  } catch (error) {
    writeSync(EXEC_ERROR_FD, (error as NodeJS.ErrnoException).code ?? 'EUNKNOWN');
  }
  return 1;
}
