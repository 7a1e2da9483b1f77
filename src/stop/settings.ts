import { join } from 'node:path';
import type { Config } from '../config/parse.js';
import { parseSignal } from '../process/signals.js';

export type ResolvedPreset = 'sidekiq' | 'generic';

/** Everything the stop timeline needs, with each default resolved and its origin named for the log. */
export interface StopSettings {
  readonly preset: ResolvedPreset;
  readonly gracePeriodMs: number;
  readonly shutdownTimeoutMs: number;
  /** Where the shutdown timeout came from: `--shutdown-timeout`, `sidekiq -t`, `config/sidekiq.yml :timeout:`, a default. */
  readonly shutdownTimeoutSource: string;
  readonly stopMarginMs: number;
  readonly killMarginMs: number;
  /** Undefined: no quiet phase. */
  readonly quietSignal: number | undefined;
  readonly stopSignal: number;
}

/** Sidekiq's own default for `-t` since 6.0. */
export const SIDEKIQ_DEFAULT_TIMEOUT_MS = 25_000;
/** Sidekiq asks for at least `-t` + 5 s between TERM and KILL. */
export const SIDEKIQ_STOP_MARGIN_MS = 5_000;

/** What the worker's command line says about Sidekiq, read before the worker starts. */
export interface SidekiqCommandLine {
  readonly isSidekiq: boolean;
  /** From `-t N`, `-tN`, `--timeout N` or `--timeout=N`, in ms. */
  readonly timeoutMs: number | undefined;
  /** From `-C file`, `--config file` or `--config=file`. */
  readonly configFile: string | undefined;
  /** From `-r path`, `--require path` or `--require=path`: the app's file or directory. */
  readonly requirePath: string | undefined;
}

/** The words of the command: its arguments, and the words inside a `sh -c "..."` script. */
function commandWords(command: string, args: readonly string[]): string[] {
  return [command, ...args].flatMap((arg) => arg.split(/\s+/)).filter((word) => word !== '');
}

function isSidekiqProgram(word: string): boolean {
  return word.split('/').at(-1) === 'sidekiq';
}

export function readSidekiqCommandLine(command: string, args: readonly string[]): SidekiqCommandLine {
  const words = commandWords(command, args);
  const start = words.findIndex(isSidekiqProgram);
  if (start === -1) return { isSidekiq: false, timeoutMs: undefined, configFile: undefined, requirePath: undefined };
  let timeoutText: string | undefined;
  let configFile: string | undefined;
  let requirePath: string | undefined;
  const sidekiqWords = words.slice(start + 1);
  for (const [index, word] of sidekiqWords.entries()) {
    const next = sidekiqWords[index + 1];
    if (word === '-t' || word === '--timeout') timeoutText = next;
    else if (word.startsWith('--timeout=')) timeoutText = word.slice('--timeout='.length);
    else if (/^-t\d+$/.test(word)) timeoutText = word.slice(2);
    else if (word === '-C' || word === '--config') configFile = next;
    else if (word.startsWith('--config=')) configFile = word.slice('--config='.length);
    else if (word === '-r' || word === '--require') requirePath = next;
    else if (word.startsWith('--require=')) requirePath = word.slice('--require='.length);
  }
  const seconds = timeoutText !== undefined && /^\d+(\.\d+)?$/.test(timeoutText) ? Number(timeoutText) : undefined;
  return {
    isSidekiq: true,
    timeoutMs: seconds === undefined ? undefined : Math.round(seconds * 1000),
    configFile,
    requirePath,
  };
}

/**
 * Where Sidekiq looks for its config file without -C, in order: `config/sidekiq.yml` and
 * `config/sidekiq.yml.erb` under the -r directory, or under the working directory when -r is a file or unset.
 */
export function defaultSidekiqConfigFiles(requireDir: string | undefined): string[] {
  return ['sidekiq.yml', 'sidekiq.yml.erb'].map((name) => join(requireDir ?? '.', 'config', name));
}

/** The top-level `:timeout:` (or `timeout:`) of a Sidekiq YAML config, in ms. */
export function readSidekiqYamlTimeout(yaml: string): number | undefined {
  const match = /^:?timeout:\s*(\d+(?:\.\d+)?)\s*(?:#.*)?$/m.exec(yaml);
  return match?.[1] === undefined ? undefined : Math.round(Number(match[1]) * 1000);
}

/**
 * Resolves the stop settings: explicit options win, then what the Sidekiq command line and its
 * config file say, then the preset's defaults.
 */
export function resolveStopSettings(
  config: Config,
  sidekiq: SidekiqCommandLine,
  yamlTimeoutMs: number | undefined,
): StopSettings {
  const preset: ResolvedPreset = config.preset === 'auto' ? (sidekiq.isSidekiq ? 'sidekiq' : 'generic') : config.preset;
  const [shutdownTimeoutMs, shutdownTimeoutSource] = resolveShutdownTimeout(config, preset, sidekiq, yamlTimeoutMs);
  const quiet = config.quietSignal ?? (preset === 'sidekiq' ? parseSignal('TSTP') : 'none');
  return {
    preset,
    gracePeriodMs: config.gracePeriodMs,
    shutdownTimeoutMs,
    shutdownTimeoutSource,
    stopMarginMs: config.stopMarginMs ?? (preset === 'sidekiq' ? SIDEKIQ_STOP_MARGIN_MS : 0),
    killMarginMs: config.killMarginMs,
    quietSignal: quiet === 'none' ? undefined : quiet,
    stopSignal: config.stopSignal,
  };
}

function resolveShutdownTimeout(
  config: Config,
  preset: ResolvedPreset,
  sidekiq: SidekiqCommandLine,
  yamlTimeoutMs: number | undefined,
): [number, string] {
  if (config.shutdownTimeoutMs !== undefined) return [config.shutdownTimeoutMs, '--shutdown-timeout'];
  if (preset !== 'sidekiq') return [0, 'generic preset default'];
  if (sidekiq.timeoutMs !== undefined) return [sidekiq.timeoutMs, 'sidekiq -t'];
  if (yamlTimeoutMs !== undefined) return [yamlTimeoutMs, `${sidekiq.configFile ?? 'sidekiq config'} :timeout:`];
  return [SIDEKIQ_DEFAULT_TIMEOUT_MS, 'sidekiq default'];
}
