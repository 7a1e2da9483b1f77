import { constants } from 'node:os';

const SIGNAL_NUMBERS: Readonly<Record<string, number>> = constants.signals;

/** Aliases that share a number with a canonical name (SIGIOT is SIGABRT, SIGPOLL is SIGIO). */
const ALIASES = new Set(['SIGIOT', 'SIGPOLL']);

/** Signals no process can catch, and SIGCHLD, which drain-init keeps for reaping. */
const NOT_FORWARDED = new Set(['SIGKILL', 'SIGSTOP', 'SIGCHLD']);

/** Every canonical signal name Node knows, by number. */
const NAME_BY_NUMBER = new Map<number, NodeJS.Signals>(
  Object.entries(SIGNAL_NUMBERS)
    .filter(([name]) => !ALIASES.has(name))
    .map(([name, number]) => [number, name as NodeJS.Signals]),
);

/** The signals drain-init installs a handler for and passes on to the child. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = [...NAME_BY_NUMBER.values()].filter(
  (name) => !NOT_FORWARDED.has(name),
);

export const SIGNAL_FORMS = 'a signal name (TERM, SIGTERM) or number (15)';

/** Parses `TERM`, `SIGTERM`, `sigterm` or `15` into a signal number known to this platform. */
export function parseSignal(text: string): number {
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) {
    const number = Number(trimmed);
    if (NAME_BY_NUMBER.has(number)) return number;
    throw new Error(`unknown signal number ${trimmed}`);
  }
  const upper = trimmed.toUpperCase();
  const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
  const number = SIGNAL_NUMBERS[name];
  if (number === undefined) throw new Error(`unknown signal '${trimmed}', expected ${SIGNAL_FORMS}`);
  return number;
}

export function signalName(number: number): NodeJS.Signals {
  const name = NAME_BY_NUMBER.get(number);
  if (name === undefined) throw new Error(`unknown signal number ${number}`);
  return name;
}

export function signalNumber(name: NodeJS.Signals): number {
  const number = SIGNAL_NUMBERS[name];
  if (number === undefined) throw new Error(`unknown signal ${name}`);
  return number;
}

export function isForwardable(number: number): boolean {
  const name = NAME_BY_NUMBER.get(number);
  return name !== undefined && !NOT_FORWARDED.has(name);
}
