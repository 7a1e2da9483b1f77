import { signalNumber } from './signals.js';

/** How the main child ended, or why it never started. */
export type ChildExit =
  | { readonly kind: 'exited'; readonly code: number }
  | { readonly kind: 'signaled'; readonly signal: NodeJS.Signals }
  | { readonly kind: 'spawn-failed'; readonly errno: string; readonly message: string };

/** Exec failures as tini reports them: not found 127, found but not executable 126. */
const SPAWN_FAILURE_CODES: Readonly<Record<string, number>> = {
  ENOENT: 127,
  ENOTDIR: 127,
  EACCES: 126,
  EPERM: 126,
  EISDIR: 126,
  ENOEXEC: 126,
};

export function exitCodeFor(exit: ChildExit): number {
  switch (exit.kind) {
    case 'exited':
      return exit.code & 0xff;
    case 'signaled':
      return 128 + signalNumber(exit.signal);
    case 'spawn-failed':
      return SPAWN_FAILURE_CODES[exit.errno] ?? 1;
  }
}

export function describeSpawnFailure(command: string, errno: string): string {
  if (SPAWN_FAILURE_CODES[errno] === 127) return `command not found: ${command}`;
  if (SPAWN_FAILURE_CODES[errno] === 126)
    return `command cannot be executed (${errno === 'EISDIR' ? 'is a directory' : 'permission denied or not an executable'}): ${command}`;
  return `command could not be started (${errno}): ${command}`;
}

/** As tini's -e: an exit status the user listed counts as success (Java exits 143 after SIGTERM). */
export function remapExitCode(code: number, countsAsZero: ReadonlySet<number>): number {
  return countsAsZero.has(code) ? 0 : code;
}

/** `code 0`, `signal SIGKILL` or `not started: ENOENT`: for logs and the Redis record. */
export function describeExit(exit: ChildExit): string {
  switch (exit.kind) {
    case 'exited':
      return `code ${exit.code}`;
    case 'signaled':
      return `signal ${exit.signal}`;
    case 'spawn-failed':
      return `not started: ${exit.errno}`;
  }
}
