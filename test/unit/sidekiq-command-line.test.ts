import { describe, expect, it } from 'vitest';
import {
  defaultSidekiqConfigFiles,
  readSidekiqCommandLine,
  readSidekiqYamlTimeout,
  sidekiqHints,
} from '../../src/sidekiq/command-line.js';

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

describe('the stop hints of a Sidekiq command line', () => {
  it("gives -t first, then the config file's :timeout:, and nothing for another program", () => {
    const withT = readSidekiqCommandLine('sidekiq', ['-t', '8', '-C', 'c.yml']);
    expect(sidekiqHints(withT, 'c.yml', 60_000)).toEqual({
      isSidekiq: true,
      shutdownTimeout: { ms: 8_000, source: 'sidekiq -t' },
    });
    const withC = readSidekiqCommandLine('sidekiq', ['-C', 'c.yml']);
    expect(sidekiqHints(withC, 'c.yml', 60_000)).toEqual({
      isSidekiq: true,
      shutdownTimeout: { ms: 60_000, source: 'c.yml :timeout:' },
    });
    expect(sidekiqHints(withC, 'c.yml', undefined)).toEqual({ isSidekiq: true });
    expect(sidekiqHints(readSidekiqCommandLine('ruby', ['w.rb', '-t', '5']), undefined, 60_000)).toEqual({
      isSidekiq: false,
    });
  });

  it('takes a child that registered as Sidekiq for one, whatever its command line', () => {
    const plain = readSidekiqCommandLine('ruby', ['w.rb']);
    expect(sidekiqHints(plain, 'config/sidekiq.yml', 9_000, true)).toEqual({
      isSidekiq: true,
      shutdownTimeout: { ms: 9_000, source: 'config/sidekiq.yml :timeout:' },
    });
  });
});
