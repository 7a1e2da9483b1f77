// The stop settings: explicit options win, then what the worker's own configuration says (the hints,
// read by whoever knows the worker: sidekiq/ for Sidekiq), then the preset's defaults. No I/O.
import type { Config } from '../config/parse.js';
import { PRESET_DEFAULTS, type ResolvedPreset } from '../config/options.js';

export type { ResolvedPreset } from '../config/options.js';

/** Everything the stop timeline needs, with each default resolved and its origin named for the log. */
export interface StopSettings {
  readonly preset: ResolvedPreset;
  readonly gracePeriodMs: number;
  /** Where the grace period came from: `--grace-period`, or what the platform said (Kubernetes, ECS, Docker). */
  readonly gracePeriodSource: string;
  /** Time after the platform's SIGTERM before the first signal (--stop-delay); never for a restart. */
  readonly stopDelayMs: number;
  readonly shutdownTimeoutMs: number;
  /** Where the shutdown timeout came from: `--shutdown-timeout`, `sidekiq -t`, `config/sidekiq.yml :timeout:`, a default. */
  readonly shutdownTimeoutSource: string;
  readonly stopMarginMs: number;
  readonly killMarginMs: number;
  /** Undefined: no quiet phase. */
  readonly quietSignal: number | undefined;
  /** `received`: the signal that started the stop (TERM or INT), passed on as it came. */
  readonly stopSignal: number | 'received';
}

/** What the worker's own configuration says about stopping it. */
export interface WorkerHints {
  /** The worker is a Sidekiq: the auto preset picks sidekiq. */
  readonly isSidekiq: boolean;
  /** Its own shutdown timeout, with where it was read. */
  readonly shutdownTimeout?: { readonly ms: number; readonly source: string };
}

export type StopConfig = Pick<
  Config,
  'preset' | 'shutdownTimeoutMs' | 'stopMarginMs' | 'killMarginMs' | 'quietSignal' | 'stopSignal' | 'stopDelayMs'
>;

/** The grace period with where it came from: --grace-period, else what the platform says (platform/). */
export interface GracePeriod {
  readonly ms: number;
  readonly source: string;
}

export function resolveStopSettings(config: StopConfig, hints: WorkerHints, grace: GracePeriod): StopSettings {
  const preset: ResolvedPreset = config.preset === 'auto' ? (hints.isSidekiq ? 'sidekiq' : 'generic') : config.preset;
  const defaults = PRESET_DEFAULTS[preset];
  const [shutdownTimeoutMs, shutdownTimeoutSource] = resolveShutdownTimeout(config, preset, hints);
  const quiet = config.quietSignal ?? defaults.quietSignal;
  return {
    preset,
    gracePeriodMs: grace.ms,
    gracePeriodSource: grace.source,
    stopDelayMs: config.stopDelayMs,
    shutdownTimeoutMs,
    shutdownTimeoutSource,
    stopMarginMs: config.stopMarginMs ?? defaults.stopMarginMs,
    killMarginMs: config.killMarginMs,
    quietSignal: quiet === 'none' ? undefined : quiet,
    stopSignal: config.stopSignal ?? defaults.stopSignal,
  };
}

function resolveShutdownTimeout(config: StopConfig, preset: ResolvedPreset, hints: WorkerHints): [number, string] {
  if (config.shutdownTimeoutMs !== undefined) return [config.shutdownTimeoutMs, '--shutdown-timeout'];
  const presetDefault = PRESET_DEFAULTS[preset].shutdownTimeoutMs;
  if (preset !== 'sidekiq') return [presetDefault, 'generic preset default'];
  if (hints.shutdownTimeout !== undefined) return [hints.shutdownTimeout.ms, hints.shutdownTimeout.source];
  return [presetDefault, 'sidekiq default'];
}

/** The auto preset went by the command line; a child that then registers as Sidekiq is stopped as one. */
export function presetLearnsSidekiq(config: Pick<Config, 'preset'>, current: StopSettings): boolean {
  return config.preset === 'auto' && current.preset === 'generic';
}
