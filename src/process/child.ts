import { execa } from 'execa';
import type { ChildExit } from './exit-status.js';
import { EXEC_ERROR_FD, foregroundCommand } from './terminal.js';

export interface Child {
  /** Undefined when the command could not be started. */
  readonly pid: number | undefined;
  readonly exited: Promise<ChildExit>;
}

/**
 * Starts the worker with no shell, stdio inherited, environment (but for the variables `env` sets) and
 * arguments passed as they are.
 * It leads a process group of its own, so that -g and the final KILL reach every process it started
 * and never drain-init itself. With `foreground` (drain-init holds the terminal) that group becomes the
 * terminal's foreground, in drain-init's session (see terminal.ts); otherwise the worker leads a session
 * of its own too.
 */
export function spawnChild(
  command: string,
  args: readonly string[],
  foreground = false,
  env: Readonly<Record<string, string>> = {},
): Child {
  const spawned = foreground ? foregroundCommand(command, args) : { file: command, args };
  const subprocess = execa(spawned.file, spawned.args, {
    stdio: foreground ? ['inherit', 'inherit', 'inherit', 'pipe'] : 'inherit',
    reject: false,
    detached: !foreground,
    cleanup: false,
    stripFinalNewline: false,
    env,
  });
  const exited = subprocess.then((result): ChildExit => {
    const execError: unknown = result.stdio[EXEC_ERROR_FD];
    if (typeof execError === 'string' && execError !== '')
      return { kind: 'spawn-failed', errno: execError, message: `${execError}: ${command}` };
    if (result.signal !== undefined) return { kind: 'signaled', signal: result.signal };
    if (result.exitCode !== undefined) return { kind: 'exited', code: result.exitCode };
    const cause = result.cause as NodeJS.ErrnoException | undefined;
    return { kind: 'spawn-failed', errno: cause?.code ?? 'EUNKNOWN', message: cause?.message ?? 'unknown spawn error' };
  });
  return { pid: subprocess.pid, exited };
}
