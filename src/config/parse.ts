// The command line and the environment into a Config, through the option table (options.ts): a flag wins
// over its env var, which wins over a fallback variable such as REDIS_URL, which wins over the default.
import type { LogFormat, LogLevel } from '../log/logger.js';
import type { RedisEndpoint } from '../redis/url.js';
import { redactRedisUrl, withSentinel } from '../redis/url.js';
import { parseSignal } from '../process/signals.js';
import type { RestartSettings } from '../restart/policy.js';
import { formatDuration } from './duration.js';
import {
  ENV_PREFIX,
  HEARTBEAT_TTL_BEATS,
  OPTION,
  PROBE_PORT,
  OPTIONS,
  envName,
  findLong,
  findShort,
  type OptionSpec,
  type Preset,
} from './options.js';
import type { SignalChoice } from './values.js';

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
  /** Unset: the logger picks by where stderr goes (log/logger.ts loggingFor). */
  readonly logLevel: LogLevel | undefined;
  readonly logFormat: LogFormat | undefined;
  /** -v given this many times: each one a level more. */
  readonly verbosity: number;
  /** Received signal number to the number forwarded instead; 0 drops the signal. */
  readonly rewrite: ReadonlyMap<number, number>;
  readonly preset: Preset;
  /** Unset: the platform's (platform/grace.ts). */
  readonly gracePeriodMs: number | undefined;
  /** Time after the platform's SIGTERM before the first signal. */
  readonly stopDelayMs: number;
  /** Unset values take their default from the preset and the worker's command line. */
  readonly shutdownTimeoutMs: number | undefined;
  readonly stopMarginMs: number | undefined;
  readonly killMarginMs: number;
  readonly quietSignal: SignalChoice | undefined;
  /** Unset: the preset's (sidekiq: TERM; generic: the signal that started the stop). */
  readonly stopSignal: number | undefined;
  /** Where Redis is; may hold a password, so log it only through describeEndpoint. Unset turns every Redis feature off. */
  readonly redis: RedisEndpoint | undefined;
  /** Unset: unique per container on its host (record/instance-id.ts). */
  readonly instanceId: string | undefined;
  readonly redisPrefix: string;
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTtlMs: number;
  readonly sidekiqNamespace: string | undefined;
  /** Mirror the worker's in-flight jobs to Redis and recover them when it dies (with a Redis URL). */
  readonly recovery: boolean;
  /** Only these queues' jobs are mirrored and recovered; undefined: every queue. */
  readonly recoveryQueues: ReadonlySet<string> | undefined;
  /** Relay a Sidekiq worker's Redis connections and record each fetch (with recovery). */
  readonly redisEndpoint: boolean;
  /** Worker deaths within 72 h that send a job to the Dead set; 0: never. */
  readonly maxJobDeaths: number;
  readonly restart: RestartSettings;
  /** A received signal that restarts the worker instead of being forwarded. */
  readonly restartSignal: number | undefined;
  /** 0: no probe endpoint. */
  readonly probePort: number;
  readonly probeHost: string;
  /** Where the probe endpoint answers as sidekiq_alive did. */
  readonly alivePath: string;
  readonly maxBeatAgeMs: number;
  /** Settings that work but deserve a word (a worker's Redis URL drain-init cannot use, --stop-signal KILL): one warning each at start. */
  readonly notices: readonly string[];
}

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
const SIGKILL = parseSignal('KILL');

export function parseConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): ParseResult {
  const fromArgv = readArgv(argv);
  if (fromArgv.kind !== 'run') return fromArgv;
  const raw = readEnv(env);
  for (const [name, value] of fromArgv.raw) raw.set(name, value);
  const [command, ...args] = fromArgv.command;
  if (command === undefined || command === '') {
    throw new ConfigError('no command given: usage is drain-init [options] -- <command> [args...]');
  }
  return { kind: 'run', config: buildConfig(new OptionValues(raw), command, args) };
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

/** The options as given, parsed by their specs; a value that does not parse is a ConfigError naming its source. */
class OptionValues {
  constructor(private readonly raw: RawOptions) {}

  /** The last value given, else the default. */
  get<T>(spec: OptionSpec<T> & { readonly default: T }): T;
  get<T>(spec: OptionSpec<T>): T | undefined;
  get<T>(spec: OptionSpec<T>): T | undefined {
    const entry = this.raw.get(spec.name);
    const text = entry?.values.at(-1);
    if (entry === undefined || text === undefined) return spec.default;
    return this.#parse(spec, text, entry.source);
  }

  /** Every value given, in order. */
  all<T>(spec: OptionSpec<T>): T[] {
    const entry = this.raw.get(spec.name);
    return (entry?.values ?? []).map((text) => this.#parse(spec, text, entry?.source ?? spec.name));
  }

  /** Where the option was given (`--grace-period`, `DRAIN_INIT_GRACE_PERIOD`); undefined when it was not. */
  source(spec: OptionSpec): string | undefined {
    return this.raw.get(spec.name)?.source;
  }

  #parse<T>(spec: OptionSpec<T>, text: string, source: string): T {
    try {
      return spec.parse(text);
    } catch (error) {
      const shown = printable(spec === OPTION.redisUrl ? redactRedisUrl(text) : text);
      throw new ConfigError(`invalid value '${shown}' for ${source}: ${(error as Error).message}`);
    }
  }
}

/** Control characters as escapes (`\n`, `\u001b`), so a bad value cannot break or forge the error line. */
export function printable(text: string): string {
  return text.replace(/\p{Cc}/gu, (char) => JSON.stringify(char).slice(1, -1));
}

/**
 * The Redis URL option. The worker's own variable (REDIS_URL) is the worker's business: a value drain-init
 * cannot use turns drain-init's Redis features off with a notice, and never keeps the worker from starting;
 * only a bad --redis-url or DRAIN_INIT_REDIS_URL is an error.
 */
function redisUrl(options: OptionValues, notices: string[]): RedisEndpoint | 'none' | undefined {
  const source = options.source(OPTION.redisUrl);
  if (source === undefined || !(OPTION.redisUrl.fallbackEnv ?? []).includes(source))
    return options.get(OPTION.redisUrl);
  try {
    return options.get(OPTION.redisUrl);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    notices.push(
      `${error.message}; the variable is the worker's: drain-init's Redis features are off and the worker starts as usual (DRAIN_INIT_REDIS_URL gives drain-init a URL of its own)`,
    );
    return undefined;
  }
}

/** The Redis URL, with the sentinels that name its primary when they are given. */
function redisEndpoint(options: OptionValues, notices: string[]): RedisEndpoint | undefined {
  const url = redisUrl(options, notices);
  const sentinels = options.all(OPTION.redisSentinels);
  const masterName = options.get(OPTION.redisMasterName);
  const password = options.get(OPTION.redisSentinelPassword);
  if (url === 'none') return undefined;
  if (sentinels.length === 0) {
    const stray = options.source(OPTION.redisMasterName) ?? options.source(OPTION.redisSentinelPassword);
    if (stray !== undefined) throw new ConfigError(`${stray} needs the sentinels: --redis-sentinels HOST:PORT`);
    return url;
  }
  if (url === undefined && masterName === undefined)
    throw new ConfigError(
      `${options.source(OPTION.redisSentinels) ?? '--redis-sentinels'} needs the primary's name: --redis-master-name, or a Redis URL whose host is it (redis://mymaster)`,
    );
  return withSentinel(url, { sentinels, masterName, ...(password === undefined ? {} : { password }) });
}

function buildConfig(options: OptionValues, command: string, args: string[]): Config {
  const heartbeatIntervalMs = options.get(OPTION.heartbeatInterval);
  const heartbeatTtlMs = options.get(OPTION.heartbeatTtl);
  if (heartbeatTtlMs !== undefined && heartbeatTtlMs <= heartbeatIntervalMs) {
    throw new ConfigError(
      `${options.source(OPTION.heartbeatTtl) ?? '--heartbeat-ttl'} (${formatDuration(heartbeatTtlMs)}) must be longer than the heartbeat interval (${formatDuration(heartbeatIntervalMs)})`,
    );
  }
  const restartDelayMs = options.get(OPTION.restartDelay);
  const restartMaxDelayMs = options.get(OPTION.restartMaxDelay);
  if (restartMaxDelayMs < restartDelayMs) {
    throw new ConfigError(
      `${options.source(OPTION.restartMaxDelay) ?? options.source(OPTION.restartDelay)}: the restart delay (${formatDuration(restartDelayMs)}) must not be longer than the maximum restart delay (${formatDuration(restartMaxDelayMs)})`,
    );
  }
  const recoveryQueues = options.all(OPTION.recoveryQueues);
  const notices: string[] = [];
  const redis = redisEndpoint(options, notices);
  const stopSignal = options.get(OPTION.stopSignal);
  if (stopSignal === SIGKILL)
    notices.push(
      `${options.source(OPTION.stopSignal) ?? '--stop-signal'} KILL: the worker is killed at the stop's first step and gets no chance to finish its jobs`,
    );
  return {
    command,
    args,
    subreaper: options.get(OPTION.subreaper),
    processGroup: options.get(OPTION.processGroup),
    remapExit: new Set(options.all(OPTION.remapExit)),
    leftoverGraceMs: options.get(OPTION.leftoverGrace),
    jobControl: options.get(OPTION.jobControl),
    logLevel: options.get(OPTION.logLevel),
    logFormat: options.get(OPTION.logFormat),
    verbosity: options.all(OPTION.verbose).reduce((sum, count) => sum + count, 0),
    rewrite: new Map(options.all(OPTION.rewrite)),
    preset: options.get(OPTION.preset),
    gracePeriodMs: options.get(OPTION.gracePeriod),
    stopDelayMs: options.get(OPTION.stopDelay),
    shutdownTimeoutMs: options.get(OPTION.shutdownTimeout),
    stopMarginMs: options.get(OPTION.stopMargin),
    killMarginMs: options.get(OPTION.killMargin),
    quietSignal: options.get(OPTION.quietSignal),
    stopSignal,
    redis,
    instanceId: options.get(OPTION.instanceId),
    redisPrefix: options.get(OPTION.redisPrefix),
    heartbeatIntervalMs,
    heartbeatTtlMs: heartbeatTtlMs ?? HEARTBEAT_TTL_BEATS * heartbeatIntervalMs,
    sidekiqNamespace: options.get(OPTION.sidekiqNamespace),
    recovery: options.get(OPTION.recovery),
    recoveryQueues: recoveryQueues.length === 0 ? undefined : new Set(recoveryQueues),
    redisEndpoint: options.get(OPTION.redisEndpoint),
    maxJobDeaths: options.get(OPTION.maxJobDeaths),
    restart: {
      policy: options.get(OPTION.restart),
      firstDelayMs: restartDelayMs,
      maxDelayMs: restartMaxDelayMs,
    },
    restartSignal: options.get(OPTION.restartSignal),
    // A plain init, as tini is, opens no port nobody asked for.
    probePort: options.get(OPTION.probePort) ?? (redis === undefined ? 0 : PROBE_PORT),
    probeHost: options.get(OPTION.probeHost),
    alivePath: options.get(OPTION.alivePath),
    maxBeatAgeMs: options.get(OPTION.maxBeatAge),
    notices,
  };
}
