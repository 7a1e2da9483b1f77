import { describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../src/config/parse.js';
import {
  defaultSidekiqConfigFiles,
  readSidekiqCommandLine,
  readSidekiqYamlTimeout,
  resolveStopSettings,
} from '../../src/stop/settings.js';

function config(argv: string[]): Config {
  const result = parseConfig(argv, {});
  if (result.kind !== 'run') throw new Error('expected a run');
  return result.config;
}

function settingsFor(argv: string[], yamlTimeoutMs?: number) {
  const parsed = config(argv);
  return resolveStopSettings(parsed, readSidekiqCommandLine(parsed.command, parsed.args), yamlTimeoutMs);
}

describe('reading the Sidekiq command line', () => {
  it.each([
    [['sidekiq'], true, undefined, undefined],
    [['bundle', 'exec', 'sidekiq', '-C', 'config/sidekiq.yml'], true, undefined, 'config/sidekiq.yml'],
    [['/usr/local/bin/sidekiq', '-t', '60'], true, 60_000, undefined],
    [['sidekiq', '--timeout', '8', '--config=c.yml'], true, 8_000, 'c.yml'],
    [['sidekiq', '--timeout=9'], true, 9_000, undefined],
    [['sidekiq', '-t12'], true, 12_000, undefined],
    [['sh', '-c', 'bundle exec sidekiq -t 5 -C x.yml'], true, 5_000, 'x.yml'],
    [['sidekiq', '-t', 'soon'], true, undefined, undefined],
    [['ruby', 'worker.rb', '-t', '5'], false, undefined, undefined],
    [['sidekiq-web'], false, undefined, undefined],
    [['rails', 'runner', 'x', '-t', '3'], false, undefined, undefined],
  ])('%j', ([command = '', ...args], isSidekiq, timeoutMs, configFile) => {
    expect(readSidekiqCommandLine(command, args)).toMatchObject({ isSidekiq, timeoutMs, configFile });
  });

  it('reads the app Sidekiq requires, and where Sidekiq looks for its config without -C', () => {
    expect(readSidekiqCommandLine('sidekiq', ['-r', './app.rb']).requirePath).toBe('./app.rb');
    expect(readSidekiqCommandLine('bundle', ['exec', 'sidekiq', '--require=/srv/app']).requirePath).toBe('/srv/app');
    expect(readSidekiqCommandLine('sidekiq', []).requirePath).toBeUndefined();
    expect(defaultSidekiqConfigFiles(undefined)).toEqual(['config/sidekiq.yml', 'config/sidekiq.yml.erb']);
    expect(defaultSidekiqConfigFiles('/srv/app')).toEqual([
      '/srv/app/config/sidekiq.yml',
      '/srv/app/config/sidekiq.yml.erb',
    ]);
  });

  it('reads :timeout: from a Sidekiq YAML config', () => {
    expect(readSidekiqYamlTimeout('---\n:concurrency: 5\n:timeout: 60\n:queues:\n  - default\n')).toBe(60_000);
    expect(readSidekiqYamlTimeout('timeout: 8 # seconds\n')).toBe(8_000);
    expect(readSidekiqYamlTimeout(':concurrency: 5\n')).toBeUndefined();
    expect(readSidekiqYamlTimeout('production:\n  :timeout: 60\n')).toBeUndefined();
  });
});

describe('resolving the stop settings', () => {
  it('auto picks sidekiq for a sidekiq command, with its defaults', () => {
    expect(settingsFor(['bundle', 'exec', 'sidekiq'])).toEqual({
      preset: 'sidekiq',
      gracePeriodMs: 30_000,
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
