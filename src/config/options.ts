/** How an option takes its value on the command line. */
export type OptionKind = 'flag' | 'value' | 'repeatable' | 'count';

export interface OptionSpec {
  /** Long name, also the env var suffix: `grace-period` is `--grace-period` and `DRAIN_INIT_GRACE_PERIOD`. */
  readonly name: string;
  readonly short?: string;
  readonly kind: OptionKind;
  readonly valueName?: string;
  readonly help: string;
  readonly defaultText: string;
  /** Other env vars that switch a flag on by their mere presence, as tini reads them. */
  readonly presenceEnv?: readonly string[];
  /** Other env vars whose value is taken when neither the flag nor the DRAIN_INIT_ var is set, such as Sidekiq's REDIS_URL. */
  readonly fallbackEnv?: readonly string[];
}

export const ENV_PREFIX = 'DRAIN_INIT_';

export function envName(spec: OptionSpec): string {
  return ENV_PREFIX + spec.name.toUpperCase().replaceAll('-', '_');
}

export const OPTIONS: readonly OptionSpec[] = [
  {
    name: 'grace-period',
    kind: 'value',
    valueName: 'DURATION',
    help: "The platform's grace period between its SIGTERM and its SIGKILL (terminationGracePeriodSeconds, stopTimeout, stop_grace_period).",
    defaultText: '30s',
  },
  {
    name: 'shutdown-timeout',
    kind: 'value',
    valueName: 'DURATION',
    help: "The worker's own shutdown timeout after its stop signal. Sidekiq: taken from -t/--timeout or the -C file's :timeout:, else 25s.",
    defaultText: 'sidekiq: 25s or its -t; generic: 0s',
  },
  {
    name: 'stop-margin',
    kind: 'value',
    valueName: 'DURATION',
    help: "Time left between the end of the worker's shutdown timeout and the kill.",
    defaultText: 'sidekiq: 5s; generic: 0s',
  },
  {
    name: 'kill-margin',
    kind: 'value',
    valueName: 'DURATION',
    help: "How long before the platform's deadline drain-init sends SIGKILL to the whole process group.",
    defaultText: '2s',
  },
  {
    name: 'quiet-signal',
    kind: 'value',
    valueName: 'SIGNAL',
    help: 'Signal that makes the worker stop taking new work; "none" skips the quiet phase.',
    defaultText: 'sidekiq: TSTP; generic: none',
  },
  {
    name: 'stop-signal',
    kind: 'value',
    valueName: 'SIGNAL',
    help: 'Signal that makes the worker shut down.',
    defaultText: 'TERM',
  },
  {
    name: 'preset',
    kind: 'value',
    valueName: 'sidekiq|generic|auto',
    help: 'Stop behaviour; auto picks sidekiq when a program word of the command is `sidekiq`.',
    defaultText: 'auto',
  },
  {
    name: 'rewrite',
    kind: 'repeatable',
    valueName: 'FROM:TO',
    help: 'Rewrite a received signal before forwarding it (TO 0 drops it); repeatable, comma-separated in the env var.',
    defaultText: 'none',
  },
  {
    name: 'subreaper',
    short: 's',
    kind: 'flag',
    help: 'Register as a child subreaper when not PID 1, so orphans are re-parented to drain-init and reaped.',
    defaultText: 'off',
    presenceEnv: ['TINI_SUBREAPER'],
  },
  {
    name: 'process-group',
    short: 'g',
    kind: 'flag',
    help: "Send forwarded signals to the child's whole process group instead of the child alone.",
    defaultText: 'off',
    presenceEnv: ['TINI_KILL_PROCESS_GROUP'],
  },
  {
    name: 'remap-exit',
    short: 'e',
    kind: 'repeatable',
    valueName: 'CODE',
    help: "Exit 0 when the worker's exit status is CODE (0-255; 128+N when signal N killed it), as tini's -e; repeatable, comma-separated in the env var.",
    defaultText: 'none',
  },
  {
    name: 'leftover-grace',
    kind: 'value',
    valueName: 'DURATION',
    help: 'Once the worker has exited, the time the processes it left get between SIGTERM and SIGKILL; 0 exits at once and leaves them.',
    defaultText: '2s',
  },
  {
    name: 'job-control',
    kind: 'flag',
    help: 'Leave a worker that a TSTP, TTIN, TTOU or STOP suspended as it is (Ctrl-Z at a terminal) until a stop begins; without it drain-init resumes it.',
    defaultText: 'off',
  },
  {
    name: 'verbose',
    short: 'v',
    kind: 'count',
    help: 'More logging: once for debug, twice for trace.',
    defaultText: '0',
  },
  {
    name: 'log-level',
    kind: 'value',
    valueName: 'LEVEL',
    help: 'trace, debug, info, warn, error, fatal or silent.',
    defaultText: 'info',
  },
  {
    name: 'log-format',
    kind: 'value',
    valueName: 'json|pretty',
    help: 'JSON lines on stderr, or readable lines.',
    defaultText: 'json',
  },
  {
    name: 'redis-url',
    kind: 'value',
    valueName: 'URL',
    help: 'Redis for the record and Sidekiq awareness: redis://[[user]:password@]host[:port][/db], or rediss:// for TLS. Unset or none: every Redis feature is off.',
    defaultText: 'the REDIS_URL env var, else none',
    fallbackEnv: ['REDIS_URL'],
  },
  {
    name: 'instance-id',
    kind: 'value',
    valueName: 'ID',
    help: 'Name of this instance in Redis.',
    defaultText: 'the POD_NAME env var, else the hostname',
    fallbackEnv: ['POD_NAME'],
  },
  {
    name: 'redis-prefix',
    kind: 'value',
    valueName: 'PREFIX',
    help: "Prefix of drain-init's Redis keys.",
    defaultText: 'drain-init',
  },
  {
    name: 'heartbeat-interval',
    kind: 'value',
    valueName: 'DURATION',
    help: 'How often the Redis record is refreshed.',
    defaultText: '10s',
  },
  {
    name: 'heartbeat-ttl',
    kind: 'value',
    valueName: 'DURATION',
    help: 'How long the Redis record outlives its last refresh; longer than the interval.',
    defaultText: '3 times the heartbeat interval',
  },
  {
    name: 'sidekiq-namespace',
    kind: 'value',
    valueName: 'NAMESPACE',
    help: 'The redis-namespace of an old Sidekiq setup: its keys are read as NAMESPACE:processes and so on.',
    defaultText: 'none',
  },
  {
    name: 'recovery',
    kind: 'value',
    valueName: 'on|off',
    help: "Mirror the Sidekiq worker's in-flight jobs to Redis and re-enqueue them when it dies (SIGKILL, OOM kill, crash), and those of dead peers.",
    defaultText: 'on (with a Redis URL)',
  },
  {
    name: 'recovery-queues',
    kind: 'repeatable',
    valueName: 'QUEUE',
    help: 'Recover only the jobs of these Sidekiq queues; repeatable, comma-separated in the env var.',
    defaultText: 'every queue',
  },
  {
    name: 'restart',
    kind: 'value',
    valueName: 'never|on-failure|always',
    help: 'Start the worker again after it exits (on-failure: unless it exits 0), for platforms that do not restart the container.',
    defaultText: 'never',
  },
  {
    name: 'restart-delay',
    kind: 'value',
    valueName: 'DURATION',
    help: 'Delay before the first restart, doubled for each restart in a row.',
    defaultText: '1s',
  },
  {
    name: 'restart-max-delay',
    kind: 'value',
    valueName: 'DURATION',
    help: 'The cap of the restart delay; a run longer than it starts a new row.',
    defaultText: '1m',
  },
  {
    name: 'probe-port',
    kind: 'value',
    valueName: 'PORT',
    help: 'Port of the HTTP probe endpoint (/livez, /readyz, /status, /metrics); 0 turns it off.',
    defaultText: '7433',
  },
  {
    name: 'probe-host',
    kind: 'value',
    valueName: 'ADDRESS',
    help: 'Address the probe endpoint listens on.',
    defaultText: '0.0.0.0',
  },
  {
    name: 'max-beat-age',
    kind: 'value',
    valueName: 'DURATION',
    help: "/livez fails when the Sidekiq worker's last heartbeat is older than this while Redis answers.",
    defaultText: '60s',
  },
];

export function findLong(name: string): OptionSpec | undefined {
  return OPTIONS.find((spec) => spec.name === name);
}

export function findShort(letter: string): OptionSpec | undefined {
  return OPTIONS.find((spec) => spec.short === letter);
}
