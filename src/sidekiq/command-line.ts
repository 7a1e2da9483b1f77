// What Sidekiq's command line and its config file say about stopping it, read before it starts: whether
// the command runs Sidekiq, and its shutdown timeout (-t, else :timeout: of the file Sidekiq itself reads).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import type { WorkerHints } from '../stop/settings.js';

/** What the worker's command line says about Sidekiq. */
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
 * The stop hints of a Sidekiq command line, without I/O: `yamlTimeoutMs` is the :timeout: of `configFile`.
 * `registered`: the child registered in Sidekiq's `processes`, whatever its command line says.
 */
export function sidekiqHints(
  commandLine: SidekiqCommandLine,
  configFile: string | undefined,
  yamlTimeoutMs: number | undefined,
  registered = false,
): WorkerHints {
  if (!commandLine.isSidekiq && !registered) return { isSidekiq: false };
  if (commandLine.timeoutMs !== undefined) {
    return { isSidekiq: true, shutdownTimeout: { ms: commandLine.timeoutMs, source: 'sidekiq -t' } };
  }
  if (yamlTimeoutMs !== undefined) {
    return {
      isSidekiq: true,
      shutdownTimeout: { ms: yamlTimeoutMs, source: `${configFile ?? 'sidekiq config'} :timeout:` },
    };
  }
  return { isSidekiq: true };
}

/** Reads the command line, and the config file Sidekiq would read, into stop hints. */
export function readSidekiqHints(
  command: string,
  args: readonly string[],
  log: Logger,
  registered = false,
): WorkerHints {
  const commandLine = readSidekiqCommandLine(command, args);
  if (!commandLine.isSidekiq && !registered) return { isSidekiq: false };
  const configFile = sidekiqConfigFile(commandLine);
  const yamlTimeoutMs = configFile === undefined ? undefined : readYamlTimeout(configFile, log);
  return sidekiqHints(commandLine, configFile, yamlTimeoutMs, registered);
}

/** The -C file, else the config file Sidekiq itself would find. */
function sidekiqConfigFile(commandLine: SidekiqCommandLine): string | undefined {
  if (commandLine.configFile !== undefined) return commandLine.configFile;
  const { requirePath } = commandLine;
  const requireDir = requirePath !== undefined && isDirectory(requirePath) ? requirePath : undefined;
  return defaultSidekiqConfigFiles(requireDir).find((file) => existsSync(file));
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function readYamlTimeout(file: string, log: Logger): number | undefined {
  try {
    return readSidekiqYamlTimeout(readFileSync(file, 'utf8'));
  } catch (error) {
    log.warn({ file, err: (error as Error).message }, 'cannot read the Sidekiq config file for its :timeout:');
    return undefined;
  }
}
