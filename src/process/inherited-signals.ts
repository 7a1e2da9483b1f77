import { signalName } from './signals.js';

/**
 * The signal mask and the ignored signals drain-init was started with (a parent's `nohup`, a blocked
 * signal), which tini gives its child back. Node resets both for itself before any of drain-init's code
 * runs, so whatever starts Node reads them first (bin/drain-init from /proc/$$/status, the release
 * executables' launcher from the kernel: src/native/launcher.c) and hands them over in this variable,
 * `<SigBlk>:<SigIgn>` as /proc/<pid>/status prints them (16 hex digits each).
 */
export const INHERITED_SIGNALS_VAR = '_DRAIN_INIT_INHERITED_SIGNALS';

/** Signal sets as the kernel has them: bit n-1 stands for signal n (1 to 64). */
export interface SignalState {
  readonly blocked: bigint;
  readonly ignored: bigint;
}

const STATE_FORM = /^([0-9a-f]{1,16}):([0-9a-f]{1,16})$/i;

export function parseSignalState(text: string): SignalState {
  const match = STATE_FORM.exec(text.trim());
  if (match === null)
    throw new Error(
      `'${text}' is not <SigBlk>:<SigIgn>, two words of up to 16 hex digits as /proc/<pid>/status prints them`,
    );
  return { blocked: BigInt(`0x${match[1] ?? ''}`), ignored: BigInt(`0x${match[2] ?? ''}`) };
}

/** A set as SigBlk and SigIgn print it, and as the exec helper reads it. */
export function formatSignalSet(set: bigint): string {
  return set.toString(16).padStart(16, '0');
}

/** Names of the signals in a set (SIGUSR1; a real-time signal by number, SIG34). */
export function signalSetNames(set: bigint): string[] {
  const names: string[] = [];
  for (let signal = 1; signal <= 64; signal++) {
    if (((set >> BigInt(signal - 1)) & 1n) === 0n) continue;
    try {
      names.push(signalName(signal));
    } catch {
      names.push(`SIG${signal}`);
    }
  }
  return names;
}

export function isDefaultSignalState(state: SignalState): boolean {
  return state.blocked === 0n && state.ignored === 0n;
}

/**
 * Takes the inherited state out of the environment, so that no worker sees the variable: the state, none
 * when the variable is unset (Node was started some other way), or why its value was not understood.
 */
export function takeInheritedSignals(env: NodeJS.ProcessEnv): { state?: SignalState; error?: string } {
  const value = env[INHERITED_SIGNALS_VAR];
  if (value === undefined) return {};
  delete env[INHERITED_SIGNALS_VAR];
  try {
    return { state: parseSignalState(value) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}
