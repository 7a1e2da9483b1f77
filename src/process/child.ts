import { execa } from 'execa';
import type { ChildExit } from './exit-status.js';

export interface Child {
  /** Undefined when the command could not be started. */
  readonly pid: number | undefined;
  readonly exited: Promise<ChildExit>;
}

/**
 * Starts the worker with no shell, stdio inherited, environment and arguments passed as they are.
 * It leads a process group (and session) of its own, so that -g and the final KILL reach every
 * process it started and never drain-init itself.
 */
export function spawnChild(command: string, args: readonly string[]): Child {
  const subprocess = execa(command, args, {
    stdio: 'inherit',
    reject: false,
    detached: true,
    cleanup: false,
    stripFinalNewline: false,
  });
  const exited = subprocess.then((result): ChildExit => {
    if (result.signal !== undefined) return { kind: 'signaled', signal: result.signal };
    if (result.exitCode !== undefined) return { kind: 'exited', code: result.exitCode };
    const cause = result.cause as NodeJS.ErrnoException | undefined;
    return { kind: 'spawn-failed', errno: cause?.code ?? 'EUNKNOWN', message: cause?.message ?? 'unknown spawn error' };
  });
  return { pid: subprocess.pid, exited };
}
