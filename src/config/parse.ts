import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { formatDuration, parseDuration } from './duration.js';
import { ENV_PREFIX, OPTIONS, envName, findLong, findShort, type OptionSpec } from './options.js';
import { SIGNAL_FORMS, isForwardable, parseSignal } from '../process/signals.js';
import { parseRedisUrl, redactRedisUrl } from '../redis/url.js';
import { RESTART_POLICIES, type RestartSettings } from '../restart/policy.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const PRESETS = ['auto', 'sidekiq', 'generic'] as const;
export type Preset = (typeof PRESETS)[number];

/** A signal option's value: a signal number, or `none` to skip that step. */
export type SignalChoice = number | 'none';

export interface Config {
  readonly command: string;
  readonly args: readonly string[];
  readonly subreaper: boolean;
  readonly processGroup: boolean;
  /** Worker exit statuses that drain-init reports as 0 (-e). */
  readonly remapExit: ReadonlySet<number>;
  /** Time between SIGTERM and SIGKILL for the processes left once the worker exited; 0: none. */
  readonly leftoverGraceMs: number;
  /** Leave a suspended worker suspended until a stop begins. */
  readonly jobControl: boolean;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** Received signal number to the number forwarded instead; 0 drops the signal. */
  readonly rewrite: ReadonlyMap<number, number>;
  readonly preset: Preset;
  readonly gracePeriodMs: number;
  /** Unset values take their default from the preset and the worker's command line. */
  readonly shutdownTimeoutMs: number | undefined;
  readonly stopMarginMs: number | undefined;
  readonly killMarginMs: number;
  readonly quietSignal: SignalChoice | undefined;
  readonly stopSignal: number;
  /** Validated; may hold a password, so log it only through redactRedisUrl. Unset turns every Redis feature off. */
  readonly redisUrl: string | undefined;
  readonly instanceId: string;
  readonly redisPrefix: string;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTtlMs: number;
  readonly sidekiqNamespace: string | undefined;
  /** Mirror the worker's in-flight jobs to Redis and recover them when it dies (with a Redis URL). */
  readonly recovery: boolean;
  /** Only these queues' jobs are mirrored and recovered; undefined: every queue. */
  readonly recoveryQueues: ReadonlySet<string> | undefined;
  readonly restart: RestartSettings;
  /** 0: no probe endpoint. */
  readonly probePort: number;
  readonly probeHost: string;
  readonly maxBeatAgeMs: number;
}

export type RedisConfig = Pick<
  Config,
  'redisUrl' | 'instanceId' | 'redisPrefix' | 'heartbeatIntervalMs' | 'heartbeatTtlMs'
>;

export type ParseResult = { kind: 'run'; config: Config } | { kind: 'help' } | { kind: 'version' };

/** A bad flag, value or env var: printed as one line, exit code 2. */
export class ConfigError extends Error {}

interface RawValue {
  readonly values: readonly string[];
  /** Where the value came from, as the user wrote it: `--grace-period` or `DRAIN_INIT_GRACE_PERIOD`. */
  readonly source: string;
}

type RawOptions = Map<string, RawValue>;

const SEE_HELP = 'see drain-init --help';
const TRUE_WORDS = ['1', 'true', 'yes', 'on'];
const FALSE_WORDS = ['0', 'false', 'no', 'off'];

export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParseResult {
  const fromArgv = readArgv(argv);
  if (fromArgv.kind !== 'run') return fromArgv;
  const raw = readEnv(env);
  for (const [name, value] of fromArgv.raw) raw.set(name, value);
  const [command, ...args] = fromArgv.command;
  if (command === undefined || command === '') {
    throw new ConfigError('no command given: usage is drain-init [options] -- <command> [args...]');
  }
  return { kind: 'run', config: buildConfig(raw, command, args) };
}

function readArgv(
  argv: readonly string[],
): { kind: 'help' } | { kind: 'version' } | { kind: 'run'; raw: RawOptions; command: string[] } {
  const raw: RawOptions = new Map();
  const add = (spec: OptionSpec, source: string, value: string) => {
    const previous = raw.get(spec.name);
    const values = spec.kind === 'repeatable' || spec.kind === 'count' ? [...(previous?.values ?? []), value] : [value];
    raw.set(spec.name, { values, source });
  };

  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index] ?? '';
    if (arg === '--') return { kind: 'run', raw, command: argv.slice(index + 1) };
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    if (arg === '--version' || arg === '-V') return { kind: 'version' };
    if (arg.startsWith('--')) {
      const equals = arg.indexOf('=');
      const name = arg.slice(2, equals === -1 ? undefined : equals);
      const spec = findLong(name);
      const source = `--${name}`;
      if (spec === undefined) throw new ConfigError(`unknown option ${source}; ${SEE_HELP}`);
      if (spec.kind === 'flag' || spec.kind === 'count') {
        if (equals !== -1) throw new ConfigError(`option ${source} takes no value`);
        add(spec, source, spec.kind === 'flag' ? 'true' : '1');
      } else if (equals !== -1) {
        add(spec, source, arg.slice(equals + 1));
      } else {
        const value = argv[index + 1];
        if (value === undefined) throw new ConfigError(`option ${source} needs a value (${spec.valueName ?? 'VALUE'})`);
        add(spec, source, value);
        index++;
      }
    } else if (arg.startsWith('-') && arg.length > 1) {
      for (let at = 1; at < arg.length; at++) {
        const letter = arg.charAt(at);
        const spec = findShort(letter);
        if (spec === undefined) throw new ConfigError(`unknown option -${letter}; ${SEE_HELP}`);
        if (spec.kind === 'flag' || spec.kind === 'count') {
          add(spec, `-${letter}`, spec.kind === 'flag' ? 'true' : '1');
          continue;
        }
        // As getopt: the value is the rest of the word (-e143) or the next word (-e 143).
        const value = at + 1 < arg.length ? arg.slice(at + 1) : argv[++index];
        if (value === undefined)
          throw new ConfigError(`option -${letter} needs a value (${spec.valueName ?? 'VALUE'})`);
        add(spec, `-${letter}`, value);
        break;
      }
    } else {
      return { kind: 'run', raw, command: argv.slice(index) };
    }
  }
  return { kind: 'run', raw, command: [] };
}

function readEnv(env: Readonly<Record<string, string | undefined>>): RawOptions {
  const raw: RawOptions = new Map();
  const known = new Set(OPTIONS.map(envName));
  for (const [key, value] of Object.entries(env)) {
    if (key.startsWith(ENV_PREFIX) && !known.has(key) && value !== undefined) {
      throw new ConfigError(`unknown environment variable ${key}; ${SEE_HELP}`);
    }
  }
  for (const spec of OPTIONS) {
    const presence = spec.presenceEnv?.find((name) => env[name] !== undefined);
    if (presence !== undefined) raw.set(spec.name, { values: ['true'], source: presence });
    const name = [envName(spec), ...(spec.fallbackEnv ?? [])].find((key) => (env[key] ?? '') !== '');
    if (name === undefined) continue;
    const value = env[name] ?? '';
    const values =
      spec.kind === 'repeatable'
        ? value
            .split(',')
            .map((part) => part.trim())
            .filter((part) => part !== '')
        : [value];
    raw.set(spec.name, { values, source: name });
  }
  return raw;
}

function buildConfig(raw: RawOptions, command: string, args: string[]): Config {
  const one = <T>(name: string, parse: (text: string) => T, shown = (text: string) => text): T | undefined => {
    const entry = raw.get(name);
    const text = entry?.values.at(-1);
    if (entry === undefined || text === undefined) return undefined;
    try {
      return parse(text);
    } catch (error) {
      throw new ConfigError(`invalid value '${shown(text)}' for ${entry.source}: ${(error as Error).message}`);
    }
  };
  const all = <T>(name: string, parse: (text: string) => T): T[] => {
    const entry = raw.get(name);
    return (entry?.values ?? []).map((text) => {
      try {
        return parse(text);
      } catch (error) {
        throw new ConfigError(`invalid value '${text}' for ${entry?.source ?? name}: ${(error as Error).message}`);
      }
    });
  };
  const flag = (name: string): boolean => one(name, parseBoolean) ?? false;
  const verbosity = all('verbose', parseCount).reduce((sum, count) => sum + count, 0);
  const baseLevel = one('log-level', oneOf(LOG_LEVELS)) ?? 'info';
  const heartbeatIntervalMs = one('heartbeat-interval', parsePositiveDuration) ?? 10_000;
  const heartbeatTtlMs = one('heartbeat-ttl', parsePositiveDuration);
  if (heartbeatTtlMs !== undefined && heartbeatTtlMs <= heartbeatIntervalMs) {
    const source = raw.get('heartbeat-ttl')?.source ?? 'heartbeat-ttl';
    throw new ConfigError(
      `${source} (${formatDuration(heartbeatTtlMs)}) must be longer than the heartbeat interval (${formatDuration(heartbeatIntervalMs)})`,
    );
  }

  const recoveryQueues = all('recovery-queues', parseName);
  const restartDelayMs = one('restart-delay', parsePositiveDuration) ?? 1_000;
  const restartMaxDelayMs = one('restart-max-delay', parsePositiveDuration) ?? 60_000;
  if (restartMaxDelayMs < restartDelayMs) {
    const source = raw.get('restart-max-delay')?.source ?? raw.get('restart-delay')?.source ?? 'restart-delay';
    throw new ConfigError(
      `${source}: the restart delay (${formatDuration(restartDelayMs)}) must not be longer than the maximum restart delay (${formatDuration(restartMaxDelayMs)})`,
    );
  }

  return {
    command,
    args,
    subreaper: flag('subreaper'),
    processGroup: flag('process-group'),
    remapExit: new Set(all('remap-exit', parseExitCode)),
    leftoverGraceMs: one('leftover-grace', parseDuration) ?? 2_000,
    jobControl: flag('job-control'),
    logLevel: moreVerbose(baseLevel, verbosity),
    logFormat: one('log-format', oneOf(LOG_FORMATS)) ?? 'json',
    rewrite: new Map(all('rewrite', parseRewrite)),
    preset: one('preset', oneOf(PRESETS)) ?? 'auto',
    gracePeriodMs: one('grace-period', parseDuration) ?? 30_000,
    shutdownTimeoutMs: one('shutdown-timeout', parseDuration),
    stopMarginMs: one('stop-margin', parseDuration),
    killMarginMs: one('kill-margin', parseDuration) ?? 2_000,
    quietSignal: one('quiet-signal', parseSignalChoice),
    stopSignal: one('stop-signal', parseSignal) ?? parseSignal('TERM'),
    redisUrl: one('redis-url', parseRedisUrlText, redactRedisUrl),
    instanceId: one('instance-id', parseName) ?? hostname(),
    redisPrefix: one('redis-prefix', parseName) ?? 'drain-init',
    heartbeatIntervalMs,
    heartbeatTtlMs: heartbeatTtlMs ?? 3 * heartbeatIntervalMs,
    sidekiqNamespace: one('sidekiq-namespace', parseNamespace),
    recovery: one('recovery', parseBoolean) ?? true,
    recoveryQueues: recoveryQueues.length === 0 ? undefined : new Set(recoveryQueues),
    restart: {
      policy: one('restart', oneOf(RESTART_POLICIES)) ?? 'never',
      firstDelayMs: restartDelayMs,
      maxDelayMs: restartMaxDelayMs,
    },
    probePort: one('probe-port', parsePort) ?? 7433,
    probeHost: one('probe-host', parseHost) ?? '0.0.0.0',
    maxBeatAgeMs: one('max-beat-age', parsePositiveDuration) ?? 60_000,
  };
}

function oneOf<T extends string>(choices: readonly T[]): (text: string) => T {
  return (text) => {
    const found = choices.find((choice) => choice === text.trim().toLowerCase());
    if (found === undefined) throw new Error(`expected one of ${choices.join(', ')}`);
    return found;
  };
}

function parseBoolean(text: string): boolean {
  const word = text.trim().toLowerCase();
  if (TRUE_WORDS.includes(word)) return true;
  if (FALSE_WORDS.includes(word)) return false;
  throw new Error(`expected one of ${[...TRUE_WORDS, ...FALSE_WORDS].join(', ')}`);
}

function parseCount(text: string): number {
  if (!/^\d+$/.test(text.trim())) throw new Error('expected a whole number (0, 1, 2)');
  return Number(text.trim());
}

function parseSignalChoice(text: string): SignalChoice {
  if (text.trim().toLowerCase() === 'none') return 'none';
  return parseSignal(text);
}

function parsePositiveDuration(text: string): number {
  const ms = parseDuration(text);
  if (ms < 1) throw new Error('must be at least 1ms');
  return ms;
}

/** `none` turns Redis off even where REDIS_URL is set for the worker. */
function parseRedisUrlText(text: string): string | undefined {
  if (text.trim().toLowerCase() === 'none') return undefined;
  parseRedisUrl(text);
  return text.trim();
}

/** Instance ids and key prefixes become part of Redis key names. */
function parseName(text: string): string {
  if (!/^[^\s\p{Cc}]+$/u.test(text.trim()))
    throw new Error('expected a non-empty name without spaces or control characters');
  return text.trim();
}

function parsePort(text: string): number {
  const port = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || port > 65_535)
    throw new Error('expected a port number from 1 to 65535, or 0 for none');
  return port;
}

/** An IP address or a host name to listen on. */
function parseHost(text: string): string {
  const host = text.trim();
  if (isIP(host) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host))
    throw new Error('expected an IP address (0.0.0.0, ::, 127.0.0.1) or a host name');
  return host;
}

/** redis-namespace joins the namespace and the key with a colon itself. */
function parseNamespace(text: string): string {
  const name = parseName(text);
  if (name.endsWith(':')) throw new Error('give the namespace without its trailing colon');
  return name;
}

function parseExitCode(text: string): number {
  if (!/^\d+$/.test(text.trim()) || Number(text.trim()) > 255) throw new Error('expected an exit status from 0 to 255');
  return Number(text.trim());
}

function parseRewrite(text: string): [number, number] {
  const parts = text.split(':');
  if (parts.length !== 2) throw new Error(`expected FROM:TO, each ${SIGNAL_FORMS}; TO may be 0 to drop`);
  const [fromText = '', toText = ''] = parts;
  const from = parseSignal(fromText);
  if (!isForwardable(from)) throw new Error(`signal ${fromText} cannot be caught, so it cannot be rewritten`);
  const to = toText.trim() === '0' ? 0 : parseSignal(toText);
  return [from, to];
}

function moreVerbose(level: LogLevel, steps: number): LogLevel {
  const index = LOG_LEVELS.indexOf(level);
  if (level === 'silent' || steps === 0) return level;
  return LOG_LEVELS[Math.max(0, index - steps)] ?? 'trace';
}
