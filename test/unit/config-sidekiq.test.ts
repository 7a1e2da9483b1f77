import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type Config } from '../../src/config/parse.js';

function config(argv: readonly string[], env: Record<string, string> = {}): Config {
  const parsed = parseConfig([...argv, '--', 'sidekiq'], env);
  if (parsed.kind !== 'run') throw new Error(`expected a run, got ${parsed.kind}`);
  return parsed.config;
}

function failure(argv: readonly string[], env: Record<string, string> = {}): string {
  try {
    config(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('Sidekiq namespace option', () => {
  it('has no namespace by default', () => {
    expect(config([]).sidekiqNamespace).toBeUndefined();
    expect(config([], { DRAIN_INIT_SIDEKIQ_NAMESPACE: '' }).sidekiqNamespace).toBeUndefined();
  });

  it('takes the namespace from the flag, else DRAIN_INIT_SIDEKIQ_NAMESPACE', () => {
    expect(config([], { DRAIN_INIT_SIDEKIQ_NAMESPACE: 'myapp' }).sidekiqNamespace).toBe('myapp');
    expect(config(['--sidekiq-namespace', 'flag'], { DRAIN_INIT_SIDEKIQ_NAMESPACE: 'env' }).sidekiqNamespace).toBe('flag');
    expect(config(['--sidekiq-namespace=app:jobs']).sidekiqNamespace).toBe('app:jobs');
  });

  it('rejects a namespace with spaces, naming where it came from', () => {
    expect(failure(['--sidekiq-namespace', 'my app'])).toMatch(/^invalid value 'my app' for --sidekiq-namespace: expected a non-empty name/);
    expect(failure([], { DRAIN_INIT_SIDEKIQ_NAMESPACE: ' ' })).toMatch(/for DRAIN_INIT_SIDEKIQ_NAMESPACE: expected a non-empty name/);
  });
});
