import { describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../src/config/parse.js';
import { readSidekiqCommandLine, sidekiqHints } from '../../src/sidekiq/command-line.js';
import { resolveStopSettings } from '../../src/stop/settings.js';

function config(argv: string[]): Config {
  const result = parseConfig(argv, {});
  if (result.kind !== 'run') throw new Error('expected a run');
  return result.config;
}

function settingsFor(argv: string[], yamlTimeoutMs?: number) {
  const parsed = config(argv);
  const commandLine = readSidekiqCommandLine(parsed.command, parsed.args);
  return resolveStopSettings(parsed, sidekiqHints(commandLine, commandLine.configFile, yamlTimeoutMs), {
    ms: 30_000,
    source: "Kubernetes' default",
  });
}

describe('resolving the stop settings', () => {
  it('auto picks sidekiq for a sidekiq command, with its defaults', () => {
    expect(settingsFor(['bundle', 'exec', 'sidekiq'])).toEqual({
      preset: 'sidekiq',
      gracePeriodMs: 30_000,
      gracePeriodSource: "Kubernetes' default",
      stopDelayMs: 0,
      shutdownTimeoutMs: 25_000,
      shutdownTimeoutSource: 'sidekiq default',
      stopMarginMs: 5_000,
      killMarginMs: 2_000,
      quietSignal: 20,
      stopSignal: 15,
    });
  });

  it('auto picks generic otherwise: no quiet signal, no timeout', () => {
    expect(settingsFor(['python', 'worker.py'])).toMatchObject({
      preset: 'generic',
      stopSignal: 'received',
      quietSignal: undefined,
      shutdownTimeoutMs: 0,
      stopMarginMs: 0,
    });
  });

  it('takes the timeout from -t, then the YAML, and an explicit option wins', () => {
    expect(settingsFor(['sidekiq', '-t', '8'], 60_000)).toMatchObject({
      shutdownTimeoutMs: 8_000,
      shutdownTimeoutSource: 'sidekiq -t',
    });
    expect(settingsFor(['sidekiq', '-C', 'c.yml'], 60_000)).toMatchObject({
      shutdownTimeoutMs: 60_000,
      shutdownTimeoutSource: 'c.yml :timeout:',
    });
    expect(settingsFor(['--shutdown-timeout', '40s', 'sidekiq', '-t', '8'])).toMatchObject({
      shutdownTimeoutMs: 40_000,
      shutdownTimeoutSource: '--shutdown-timeout',
    });
  });

  it('lets options override the preset', () => {
    expect(settingsFor(['--preset', 'generic', 'sidekiq'])).toMatchObject({
      preset: 'generic',
      quietSignal: undefined,
    });
    expect(settingsFor(['--preset', 'sidekiq', 'ruby', 'w.rb'])).toMatchObject({
      preset: 'sidekiq',
      quietSignal: 20,
      shutdownTimeoutMs: 25_000,
    });
    expect(settingsFor(['--quiet-signal', 'none', 'sidekiq'])).toMatchObject({
      preset: 'sidekiq',
      quietSignal: undefined,
    });
    expect(settingsFor(['--quiet-signal', 'USR1', '--stop-margin', '1s', 'worker'])).toMatchObject({
      quietSignal: 10,
      stopMarginMs: 1_000,
    });
  });
});
