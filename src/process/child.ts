import { execa } from 'execa';
import type { ChildExit } from './exit-status.js';

export interface Child {
  /** Undefined when the command could not be started. */
  readonly pid: number | undefined;
  readonly exited: Promise<ChildExit>;
}

export interface SpawnOptions {
  /** Put the child in a process group of its own (a new session), so the group can be signalled. */
  readonly ownProcessGroup: boolean;
}

/** Starts the worker with no shell, stdio inherited, environment and arguments passed as they are. */
export function spawnChild(command: string, args: readonly string[], options: SpawnOptions): Child {
  const subprocess = execa(command, args, {
    stdio: 'inherit',
    reject: false,
    detached: options.ownProcessGroup,
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
