import { readFileSync } from 'node:fs';

/** The state letter of a `/proc/<pid>/stat` line (R, S, D, T, t, Z, ...). */
export function stateFromStat(stat: string): string | undefined {
  // The command name may itself hold spaces and parentheses: the state follows the last ')'.
  const afterName = stat.slice(stat.lastIndexOf(')') + 1).trim();
  return afterName.split(' ')[0] || undefined;
}

/** The process's state, or undefined when it is gone. */
export function processState(pid: number): string | undefined {
  try {
    return stateFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}
