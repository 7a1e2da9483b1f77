// The one table of drain-init's options: name, help, parser and default value. The command line, the
// environment, the defaults of Config and the --help text are all read from it.
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../log/logger.js';
import { parseSignal } from '../process/signals.js';
import { parseSentinelAddress } from '../redis/url.js';
import { RESTART_POLICIES, type RestartPolicy } from '../restart/policy.js';
import { formatDuration, parseDuration } from './duration.js';
import {
  oneOf,
  parseBoolean,
  parseCount,
  parseExitCode,
  parseHost,
  parseName,
  parseNamespace,
  parsePort,
  parsePositiveDuration,
  parseRedisUrlOption,
  parseRestartSignal,
  parseSecret,
  parseRewrite,
  parseSignalChoice,
  parseUrlPath,
  show,
  type SignalChoice,
} from './values.js';

/** How an option takes its value on the command line. */
export type OptionKind = 'flag' | 'value' | 'repeatable' | 'count';

export interface OptionSpec<T = unknown> {
  /** Long name, also the env var suffix: `grace-period` is `--grace-period` and `DRAIN_INIT_GRACE_PERIOD`. */
  readonly name: string;
  readonly short?: string;
  readonly kind: OptionKind;
  readonly valueName?: string;
  readonly help: string;
  /** One value (one item of a repeatable option); throws a one-line reason. */
  readonly parse: (text: string) => T;
  /** The value when the option is not given; absent when there is none or it is resolved later (defaultText). */
  readonly default?: T;
  /** What --help says of a default that is not a plain value (it depends on the preset or another option). */
  readonly defaultText?: string;
  /** How --help shows the default value. */
  show?(value: T): string;
  /** Other env vars that switch a flag on by their mere presence, as tini reads them. */
  readonly presenceEnv?: readonly string[];
  /** Other env vars whose value is taken when neither the flag nor the DRAIN_INIT_ var is set, such as Sidekiq's REDIS_URL. */
  readonly fallbackEnv?: readonly string[];
}

export const PRESETS = ['auto', 'sidekiq', 'generic'] as const;
export type Preset = (typeof PRESETS)[number];
export type ResolvedPreset = Exclude<Preset, 'auto'>;

/** The defaults that depend on the preset; Sidekiq's are its own (`-t` 25 s since 6.0, `-t` + 5 s before KILL). */
export const PRESET_DEFAULTS: Readonly<
  Record<
    ResolvedPreset,
    {
      shutdownTimeoutMs: number;
      stopMarginMs: number;
      quietSignal: SignalChoice;
      /** `received`: the signal the platform sent (TERM or INT), passed on as it came, as tini does. */
      stopSignal: number | 'received';
    }
  >
> = {
  sidekiq: {
    shutdownTimeoutMs: 25_000,
    stopMarginMs: 5_000,
    quietSignal: parseSignal('TSTP'),
    stopSignal: parseSignal('TERM'),
  },
  generic: { shutdownTimeoutMs: 0, stopMarginMs: 0, quietSignal: 'none', stopSignal: 'received' },
};

/** The probe endpoint's port when the Redis features are on: sidekiq_alive's. */
export const PROBE_PORT = 7433;

/** The record outlives its last beat by this many heartbeat intervals unless --heartbeat-ttl says otherwise. */
export const HEARTBEAT_TTL_BEATS = 3;

export const ENV_PREFIX = 'DRAIN_INIT_';

export function envName(spec: OptionSpec): string {
  return ENV_PREFIX + spec.name.toUpperCase().replaceAll('-', '_');
}

/** Keeps the option's value type, and whether it has a default, for OptionValues.get. */
function option<T>(spec: OptionSpec<T> & { readonly default: T }): OptionSpec<T> & { readonly default: T };
function option<T>(spec: OptionSpec<T>): OptionSpec<T>;
function option<T>(spec: OptionSpec<T>): OptionSpec<T> {
  return spec;
}

function byPreset(pick: (defaults: (typeof PRESET_DEFAULTS)[ResolvedPreset]) => string): string {
  return `sidekiq: ${pick(PRESET_DEFAULTS.sidekiq)}; generic: ${pick(PRESET_DEFAULTS.generic)}`;
}

const flag = { kind: 'flag', parse: parseBoolean, default: false, show: show.onOff } as const;

export const OPTION = {
  gracePeriod: option({
    name: 'grace-period',
    kind: 'value',
    valueName: 'DURATION',
    help: "The platform's grace period between its SIGTERM and its SIGKILL (terminationGracePeriodSeconds, stopTimeout, stop_grace_period).",
    parse: parseDuration,
    defaultText:
      "the platform's: Kubernetes, the pod's terminationGracePeriodSeconds read from the API (else 30s); ECS, the task metadata's (else 30s); Docker and compose, 10s; else 30s",
  }),
  shutdownTimeout: option({
    name: 'shutdown-timeout',
    kind: 'value',
    valueName: 'DURATION',
    help: "The worker's own shutdown timeout after its stop signal. Sidekiq: taken from -t/--timeout or the -C file's :timeout:.",
    parse: parseDuration,
    defaultText: `sidekiq: ${formatDuration(PRESET_DEFAULTS.sidekiq.shutdownTimeoutMs)} or its -t; generic: ${formatDuration(PRESET_DEFAULTS.generic.shutdownTimeoutMs)}`,
  }),
  stopMargin: option({
    name: 'stop-margin',
    kind: 'value',
    valueName: 'DURATION',
    help: "Time left between the end of the worker's shutdown timeout and the kill.",
    parse: parseDuration,
    defaultText: byPreset((preset) => formatDuration(preset.stopMarginMs)),
  }),
  killMargin: option({
    name: 'kill-margin',
    kind: 'value',
    valueName: 'DURATION',
    help: "How long before the platform's deadline drain-init sends SIGKILL to the whole process group.",
    parse: parseDuration,
    default: 2_000,
    show: show.duration,
  }),
  stopDelay: option({
    name: 'stop-delay',
    kind: 'value',
    valueName: 'DURATION',
    help: "Wait this long after the platform's SIGTERM before the first signal, so load balancers and endpoints let go of the pod first; counted into the plan.",
    parse: parseDuration,
    default: 0,
    show: show.duration,
  }),
  quietSignal: option({
    name: 'quiet-signal',
    kind: 'value',
    valueName: 'SIGNAL',
    help: 'Signal that makes the worker stop taking new work; "none" skips the quiet phase.',
    parse: parseSignalChoice,
    defaultText: byPreset((preset) => show.signalChoice(preset.quietSignal)),
  }),
  stopSignal: option({
    name: 'stop-signal',
    kind: 'value',
    valueName: 'SIGNAL',
    help: 'Signal that makes the worker shut down.',
    parse: parseSignal,
    defaultText:
      'sidekiq: TERM; generic: the signal that started the stop (TERM, or INT for docker kill -s INT and STOPSIGNAL SIGINT)',
  }),
  preset: option<Preset>({
    name: 'preset',
    kind: 'value',
    valueName: 'sidekiq|generic|auto',
    help: 'Stop behaviour; auto picks sidekiq when a program word of the command is `sidekiq`.',
    parse: oneOf(PRESETS),
    default: 'auto',
  }),
  rewrite: option({
    name: 'rewrite',
    kind: 'repeatable',
    valueName: 'FROM:TO',
    help: 'Rewrite a received signal before forwarding it (TO 0 drops it); repeatable, comma-separated in the env var.',
    parse: parseRewrite,
    defaultText: 'none',
  }),
  subreaper: option({
    ...flag,
    name: 'subreaper',
    short: 's',
    help: 'Register as a child subreaper when not PID 1, so orphans are re-parented to drain-init and reaped.',
    presenceEnv: ['TINI_SUBREAPER'],
  }),
  processGroup: option({
    ...flag,
    name: 'process-group',
    short: 'g',
    help: "Send forwarded signals to the child's whole process group instead of the child alone.",
    presenceEnv: ['TINI_KILL_PROCESS_GROUP'],
  }),
  remapExit: option({
    name: 'remap-exit',
    short: 'e',
    kind: 'repeatable',
    valueName: 'CODE',
    help: "Exit 0 when the worker's exit status is CODE (0-255; 128+N when signal N killed it), as tini's -e; repeatable, comma-separated in the env var.",
    parse: parseExitCode,
    defaultText: 'none',
  }),
  leftoverGrace: option({
    name: 'leftover-grace',
    kind: 'value',
    valueName: 'DURATION',
    help: 'Once the worker has exited, the time the processes it left get between SIGTERM and SIGKILL; 0 exits at once and leaves them.',
    parse: parseDuration,
    default: 2_000,
    show: show.duration,
  }),
  jobControl: option({
    ...flag,
    name: 'job-control',
    help: 'Leave a worker that a TSTP, TTIN, TTOU or STOP suspended as it is (Ctrl-Z at a terminal) until a stop begins; without it drain-init resumes it.',
  }),
  verbose: option({
    name: 'verbose',
    short: 'v',
    kind: 'count',
    help: 'More logging: once for debug, twice for trace.',
    parse: parseCount,
    default: 0,
  }),
  logLevel: option<LogLevel>({
    name: 'log-level',
    kind: 'value',
    valueName: 'LEVEL',
    help: 'trace, debug, info, warn, error, fatal or silent.',
    parse: oneOf(LOG_LEVELS),
    defaultText: 'info; warn for readable lines on a terminal, so a normal start and exit are quiet',
  }),
  logFormat: option<LogFormat>({
    name: 'log-format',
    kind: 'value',
    valueName: 'json|pretty',
    help: 'JSON lines on stderr, or readable lines.',
    parse: oneOf(LOG_FORMATS),
    defaultText: 'pretty when stderr is a terminal (docker run -it), else json',
  }),
  redisUrl: option({
    name: 'redis-url',
    kind: 'value',
    valueName: 'URL',
    help: 'Redis for the record and Sidekiq awareness: redis://[[user]:password@]host[:port][/db], or rediss:// for TLS. Unset or none: every Redis feature is off.',
    parse: parseRedisUrlOption,
    defaultText: 'the REDIS_URL env var, else none',
    fallbackEnv: ['REDIS_URL'],
  }),
  redisSentinels: option({
    name: 'redis-sentinels',
    kind: 'repeatable',
    valueName: 'HOST:PORT',
    help: "Redis Sentinel: the sentinels' addresses (port 26379 unless given), which name the primary and follow its failover; repeatable, comma-separated in the env var.",
    parse: parseSentinelAddress,
    defaultText: 'none: the Redis URL names the server',
  }),
  redisMasterName: option({
    name: 'redis-master-name',
    kind: 'value',
    valueName: 'NAME',
    help: "The primary's name the sentinels know (Sidekiq's master_name); the database, TLS and password come from the Redis URL.",
    parse: parseName,
    defaultText: 'the host of the Redis URL (redis://mymaster), as redis-rb reads it beside its sentinels',
  }),
  redisSentinelPassword: option({
    name: 'redis-sentinel-password',
    kind: 'value',
    valueName: 'PASSWORD',
    help: "The sentinels' own password (Sidekiq's sentinel_password), when they ask for one.",
    parse: parseSecret,
    defaultText: 'none',
  }),
  instanceId: option({
    name: 'instance-id',
    kind: 'value',
    valueName: 'ID',
    help: 'Name of this instance in Redis. Two live drain-inits never share one: the second takes ID-2, and so on.',
    parse: parseName,
    defaultText: 'POD_NAME (else the hostname), then /container: its Kubernetes name, or 12 characters of its id',
  }),
  redisPrefix: option({
    name: 'redis-prefix',
    kind: 'value',
    valueName: 'PREFIX',
    help: "Prefix of drain-init's Redis keys.",
    parse: parseName,
    default: 'drain-init',
  }),
  heartbeatInterval: option({
    name: 'heartbeat-interval',
    kind: 'value',
    valueName: 'DURATION',
    help: 'How often the Redis record is refreshed.',
    parse: parsePositiveDuration,
    default: 10_000,
    show: show.duration,
  }),
  heartbeatTtl: option({
    name: 'heartbeat-ttl',
    kind: 'value',
    valueName: 'DURATION',
    help: 'How long the Redis record outlives its last refresh; longer than the interval.',
    parse: parsePositiveDuration,
    defaultText: `${HEARTBEAT_TTL_BEATS} times the heartbeat interval`,
  }),
  sidekiqNamespace: option({
    name: 'sidekiq-namespace',
    kind: 'value',
    valueName: 'NAMESPACE',
    help: 'The redis-namespace of an old Sidekiq setup: its keys are read as NAMESPACE:processes and so on.',
    parse: parseNamespace,
    defaultText: 'none',
  }),
  recovery: option({
    name: 'recovery',
    kind: 'value',
    valueName: 'on|off',
    help: "Mirror the Sidekiq worker's in-flight jobs to Redis and re-enqueue them when it dies (SIGKILL, OOM kill, crash), and those of dead peers.",
    parse: parseBoolean,
    default: true,
    defaultText: 'on (with a Redis URL)',
  }),
  recoveryQueues: option({
    name: 'recovery-queues',
    kind: 'repeatable',
    valueName: 'QUEUE',
    help: 'Recover only the jobs of these Sidekiq queues; repeatable, comma-separated in the env var.',
    parse: parseName,
    defaultText: 'every queue',
  }),
  redisEndpoint: option({
    name: 'redis-endpoint',
    kind: 'value',
    valueName: 'on|off',
    help: "Relay a Sidekiq worker's Redis connections (its REDIS_URL points at drain-init) and record each job as it leaves its queue, so a killed worker loses none; off: the heartbeat mirror alone.",
    parse: parseBoolean,
    default: true,
    defaultText: 'on (with --recovery on and a Sidekiq worker)',
  }),
  maxJobDeaths: option({
    name: 'max-job-deaths',
    kind: 'value',
    valueName: 'N',
    help: "A job whose workers died N times within 72 h (OOM kills, crashes) goes to Sidekiq's Dead set instead of back to its queue; 0 never.",
    parse: parseCount,
    default: 3,
  }),
  restart: option<RestartPolicy>({
    name: 'restart',
    kind: 'value',
    valueName: 'never|on-failure|always',
    help: 'Start the worker again after it exits (on-failure: unless it exits 0), for platforms that do not restart the container.',
    parse: oneOf(RESTART_POLICIES),
    default: 'never',
  }),
  restartDelay: option({
    name: 'restart-delay',
    kind: 'value',
    valueName: 'DURATION',
    help: 'Delay before the first restart, doubled for each restart in a row.',
    parse: parsePositiveDuration,
    default: 1_000,
    show: show.duration,
  }),
  restartMaxDelay: option({
    name: 'restart-max-delay',
    kind: 'value',
    valueName: 'DURATION',
    help: 'The cap of the restart delay; a run longer than it starts a new row.',
    parse: parsePositiveDuration,
    default: 60_000,
    show: show.duration,
  }),
  restartSignal: option({
    name: 'restart-signal',
    kind: 'value',
    valueName: 'SIGNAL',
    help: 'A signal (HUP, USR2 ...) that restarts the worker without restarting the container: the running one is stopped as by a stop, then a new one is started.',
    parse: parseRestartSignal,
    defaultText: 'none: every signal but TERM and INT is forwarded',
  }),
  probePort: option({
    name: 'probe-port',
    kind: 'value',
    valueName: 'PORT',
    help: 'Port of the HTTP probe endpoint (/livez, /readyz, /status, /metrics); 0 turns it off. Without a Redis URL it is opened only when this is given.',
    parse: parsePort,
    defaultText: `${PROBE_PORT} with a Redis URL, else off`,
    fallbackEnv: ['SIDEKIQ_ALIVE_PORT'],
  }),
  probeHost: option({
    name: 'probe-host',
    kind: 'value',
    valueName: 'ADDRESS',
    help: 'Address the probe endpoint listens on.',
    parse: parseHost,
    default: '0.0.0.0',
  }),
  alivePath: option({
    name: 'alive-path',
    kind: 'value',
    valueName: 'PATH',
    help: 'The path where the probe endpoint answers as sidekiq_alive did (200 Alive!, else 404), with the meaning of /livez.',
    parse: parseUrlPath,
    default: '/',
    fallbackEnv: ['SIDEKIQ_ALIVE_PATH'],
  }),
  maxBeatAge: option({
    name: 'max-beat-age',
    kind: 'value',
    valueName: 'DURATION',
    help: "/livez fails when the Sidekiq worker's last heartbeat is older than this while Redis answers.",
    parse: parsePositiveDuration,
    default: 60_000,
    show: show.duration,
  }),
};

/** Every option, in the order --help lists them. */
export const OPTIONS: readonly OptionSpec[] = Object.values(OPTION);

/** The default as --help shows it. */
export function defaultText(spec: OptionSpec): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  if (spec.default === undefined) return 'none';
  return spec.show === undefined ? String(spec.default) : spec.show(spec.default);
}

export function findLong(name: string): OptionSpec | undefined {
  return OPTIONS.find((spec) => spec.name === name);
}

export function findShort(letter: string): OptionSpec | undefined {
  return OPTIONS.find((spec) => spec.short === letter);
}
