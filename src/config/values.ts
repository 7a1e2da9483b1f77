// Parsers of single option values: each turns one word into a value or throws a one-line reason, which
// parse.ts prefixes with the option's name. No I/O.
import { isIP } from 'node:net';
import { SIGNAL_FORMS, isForwardable, parseSignal, signalName } from '../process/signals.js';
import { parseRedisUrl, type RedisEndpoint } from '../redis/url.js';
import { formatDuration, parseDuration } from './duration.js';

const TRUE_WORDS = ['1', 'true', 'yes', 'on'];
const FALSE_WORDS = ['0', 'false', 'no', 'off'];

/** A signal option's value: a signal number, or `none` to skip that step. */
export type SignalChoice = number | 'none';

export function oneOf<T extends string>(choices: readonly T[]): (text: string) => T {
  return (text) => {
    const found = choices.find((choice) => choice === text.trim().toLowerCase());
    if (found === undefined) throw new Error(`expected one of ${choices.join(', ')}`);
    return found;
  };
}

export function parseBoolean(text: string): boolean {
  const word = text.trim().toLowerCase();
  if (TRUE_WORDS.includes(word)) return true;
  if (FALSE_WORDS.includes(word)) return false;
  throw new Error(`expected one of ${[...TRUE_WORDS, ...FALSE_WORDS].join(', ')}`);
}

export function parseCount(text: string): number {
  if (!/^\d+$/.test(text.trim())) throw new Error('expected a whole number (0, 1, 2)');
  return Number(text.trim());
}

export function parseSignalChoice(text: string): SignalChoice {
  if (text.trim().toLowerCase() === 'none') return 'none';
  return parseSignal(text);
}

/** A signal drain-init takes over to restart the worker: one it can catch, and not TERM or INT, which stop. */
export function parseRestartSignal(text: string): number {
  const signal = parseSignal(text);
  if (!isForwardable(signal)) throw new Error(`signal ${text.trim()} cannot be caught`);
  if (signal === parseSignal('TERM') || signal === parseSignal('INT'))
    throw new Error('TERM and INT stop the worker; choose another signal, such as HUP or USR2');
  return signal;
}

export function parsePositiveDuration(text: string): number {
  const ms = parseDuration(text);
  if (ms < 1) throw new Error('must be at least 1ms');
  return ms;
}

/** `none` turns Redis off even where REDIS_URL is set for the worker. */
export function parseRedisUrlOption(text: string): RedisEndpoint | 'none' {
  if (text.trim().toLowerCase() === 'none') return 'none';
  return parseRedisUrl(text);
}

/** A password: any text, never shown back. */
export function parseSecret(text: string): string {
  if (text === '') throw new Error('expected a password');
  return text;
}

/** Instance ids and key prefixes become part of Redis key names. */
export function parseName(text: string): string {
  if (!/^[^\s\p{Cc}]+$/u.test(text.trim()))
    throw new Error('expected a non-empty name without spaces or control characters');
  return text.trim();
}

export function parsePort(text: string): number {
  const port = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || port > 65_535)
    throw new Error('expected a port number from 1 to 65535, or 0 for none');
  return port;
}

/** An IP address or a host name to listen on. */
export function parseHost(text: string): string {
  const host = text.trim();
  if (isIP(host) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
    throw new Error('expected an IP address (0.0.0.0, ::, 127.0.0.1) or a host name');
  }
  return host;
}

/** An HTTP path such as `/` or `/health`, without a query. */
export function parseUrlPath(text: string): string {
  const path = text.trim();
  if (!/^\/[\x21-\x7e]*$/.test(path) || path.includes('?') || path.includes('#'))
    throw new Error('expected a path that starts with / and has no spaces, query or fragment');
  return path;
}

/** redis-namespace joins the namespace and the key with a colon itself. */
export function parseNamespace(text: string): string {
  const name = parseName(text);
  if (name.endsWith(':')) throw new Error('give the namespace without its trailing colon');
  return name;
}

export function parseExitCode(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text.trim()) > 255) throw new Error('expected an exit status from 0 to 255');
  return Number(text.trim());
}

export function parseRewrite(text: string): [number, number] {
  const parts = text.split(':');
  if (parts.length !== 2) throw new Error(`expected FROM:TO, each ${SIGNAL_FORMS}; TO may be 0 to drop`);
  const [fromText = '', toText = ''] = parts;
  const from = parseSignal(fromText);
  if (!isForwardable(from)) throw new Error(`signal ${fromText} cannot be caught, so it cannot be rewritten`);
  const to = toText.trim() === '0' ? 0 : parseSignal(toText);
  return [from, to];
}

/** How --help shows a value of each kind. */
export const show = {
  duration: formatDuration,
  signal: (signal: number): string => signalName(signal).slice(3),
  signalChoice: (choice: SignalChoice): string => (choice === 'none' ? 'none' : signalName(choice).slice(3)),
  onOff: (on: boolean): string => (on ? 'on' : 'off'),
};
