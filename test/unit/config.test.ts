import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type Config } from '../../src/config/parse.js';
import { helpText } from '../../src/config/help.js';
import { OPTIONS, envName } from '../../src/config/options.js';
import { VERSION } from '../../src/version.js';

function config(argv: string[], env: Record<string, string> = {}): Config {
  const result = parseConfig(argv, env);
  if (result.kind !== 'run') throw new Error(`expected a run, got ${result.kind}`);
  return result.config;
}

function error(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseConfig(argv, env);
  } catch (caught) {
    expect(caught).toBeInstanceOf(ConfigError);
    return (caught as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('command line', () => {
  it('takes the command after -- with its arguments untouched', () => {
    const parsed = config(['-g', '--', 'sidekiq', '-C', 'config/sidekiq.yml', '--', '-v']);
    expect(parsed.command).toBe('sidekiq');
    expect(parsed.args).toEqual(['-C', 'config/sidekiq.yml', '--', '-v']);
    expect(parsed.processGroup).toBe(true);
  });

  it('stops reading options at the first word that is not one', () => {
    const parsed = config(['-s', 'bundle', 'exec', 'sidekiq', '-v']);
    expect(parsed.command).toBe('bundle');
    expect(parsed.args).toEqual(['exec', 'sidekiq', '-v']);
    expect(parsed.subreaper).toBe(true);
    expect(parsed.logLevel).toBe('info');
  });

  it('has the documented defaults', () => {
    const parsed = config(['--', 'worker']);
    expect(parsed).toMatchObject({
      subreaper: false,
      processGroup: false,
      logLevel: 'info',
      logFormat: 'json',
      preset: 'auto',
      gracePeriodMs: 30_000,
      shutdownTimeoutMs: undefined,
      stopMarginMs: undefined,
      killMarginMs: 2_000,
      quietSignal: undefined,
      stopSignal: 15,
    });
    expect(parsed.rewrite.size).toBe(0);
  });

  it('accepts --name value and --name=value', () => {
    expect(config(['--grace-period', '2m', 'w']).gracePeriodMs).toBe(120_000);
    expect(config(['--grace-period=500ms', 'w']).gracePeriodMs).toBe(500);
  });

  it('combines short flags and counts -v', () => {
    const parsed = config(['-sgvv', '--', 'w']);
    expect(parsed).toMatchObject({ subreaper: true, processGroup: true, logLevel: 'trace' });
    expect(config(['-v', 'w']).logLevel).toBe('debug');
    expect(config(['-v', '--log-level', 'warn', 'w']).logLevel).toBe('info');
  });

  it('parses repeatable --rewrite with names and numbers, 0 dropping', () => {
    const parsed = config(['--rewrite', '15:20', '--rewrite=SIGINT:quit', '--rewrite', 'HUP:0', 'w']);
    expect([...parsed.rewrite]).toEqual([
      [15, 20],
      [2, 3],
      [1, 0],
    ]);
  });

  it('parses signals and presets of the stop sequence', () => {
    const parsed = config(['--quiet-signal', 'none', '--stop-signal', 'SIGQUIT', '--preset', 'sidekiq', 'w']);
    expect(parsed).toMatchObject({ quietSignal: 'none', stopSignal: 3, preset: 'sidekiq' });
    expect(config(['--quiet-signal', 'usr1', 'w']).quietSignal).toBe(10);
  });

  it('answers --help and --version before anything else', () => {
    expect(parseConfig(['--help'], {})).toEqual({ kind: 'help' });
    expect(parseConfig(['-h', '--bogus'], {})).toEqual({ kind: 'help' });
    expect(parseConfig(['--version'], {})).toEqual({ kind: 'version' });
  });
});

describe('environment variables', () => {
  it('sets every option, and a flag wins', () => {
    const env = { DRAIN_INIT_GRACE_PERIOD: '45', DRAIN_INIT_LOG_FORMAT: 'pretty', DRAIN_INIT_REWRITE: '15:20, 2:3' };
    expect(config(['w'], env)).toMatchObject({ gracePeriodMs: 45_000, logFormat: 'pretty' });
    expect([...config(['w'], env).rewrite]).toEqual([
      [15, 20],
      [2, 3],
    ]);
    expect(config(['--grace-period', '10s', 'w'], env).gracePeriodMs).toBe(10_000);
    expect([...config(['--rewrite', '1:0', 'w'], env).rewrite]).toEqual([[1, 0]]);
  });

  it('reads boolean words and the tini variables by presence', () => {
    expect(config(['w'], { DRAIN_INIT_SUBREAPER: 'yes' }).subreaper).toBe(true);
    expect(config(['w'], { DRAIN_INIT_PROCESS_GROUP: '0' }).processGroup).toBe(false);
    expect(config(['w'], { TINI_SUBREAPER: '' }).subreaper).toBe(true);
    expect(config(['w'], { TINI_KILL_PROCESS_GROUP: '1' }).processGroup).toBe(true);
    expect(config(['w'], { DRAIN_INIT_VERBOSE: '2' }).logLevel).toBe('trace');
  });

  it('treats an empty value as unset', () => {
    expect(config(['w'], { DRAIN_INIT_GRACE_PERIOD: '' }).gracePeriodMs).toBe(30_000);
  });

  it('names one env var per option in --help', () => {
    const help = helpText();
    for (const spec of OPTIONS) {
      expect(help).toContain(`--${spec.name}`);
      expect(help).toContain(envName(spec));
    }
    expect(help).toContain('TINI_SUBREAPER');
  });
});

describe('errors name the input and what is accepted', () => {
  it.each([
    [['--bogus', 'w'], {}, 'unknown option --bogus; see drain-init --help'],
    [['-x', 'w'], {}, 'unknown option -x; see drain-init --help'],
    [['--grace-period'], {}, 'option --grace-period needs a value (DURATION)'],
    [['--subreaper=1', 'w'], {}, 'option --subreaper takes no value'],
    [['--grace-period', 'soon', 'w'], {}, "invalid value 'soon' for --grace-period: expected a duration such as 500ms, 30s, 2m, 1h or bare seconds"],
    [['--kill-margin', '-1', 'w'], {}, "invalid value '-1' for --kill-margin"],
    [['--grace-period', '999h', 'w'], {}, 'longer than the maximum of 24 days'],
    [['--log-level', 'loud', 'w'], {}, "invalid value 'loud' for --log-level: expected one of trace, debug, info, warn, error, fatal, silent"],
    [['--log-format', 'xml', 'w'], {}, 'expected one of json, pretty'],
    [['--preset', 'rails', 'w'], {}, 'expected one of auto, sidekiq, generic'],
    [['--stop-signal', 'SIGFOO', 'w'], {}, "unknown signal 'SIGFOO'"],
    [['--stop-signal', '99', 'w'], {}, 'unknown signal number 99'],
    [['--rewrite', '15', 'w'], {}, 'expected FROM:TO'],
    [['--rewrite', 'KILL:TERM', 'w'], {}, 'signal KILL cannot be caught'],
    [['--rewrite', 'TERM:bogus', 'w'], {}, "unknown signal 'bogus'"],
    [[], {}, 'no command given: usage is drain-init [options] -- <command> [args...]'],
    [['--'], {}, 'no command given'],
    [['w'], { DRAIN_INIT_GRACE_PERIODS: '1' }, 'unknown environment variable DRAIN_INIT_GRACE_PERIODS; see drain-init --help'],
    [['w'], { DRAIN_INIT_GRACE_PERIOD: '1y' }, "invalid value '1y' for DRAIN_INIT_GRACE_PERIOD"],
    [['w'], { DRAIN_INIT_SUBREAPER: 'maybe' }, "invalid value 'maybe' for DRAIN_INIT_SUBREAPER: expected one of 1, true, yes, on, 0, false, no, off"],
    [['w'], { DRAIN_INIT_VERBOSE: 'lots' }, "invalid value 'lots' for DRAIN_INIT_VERBOSE: expected a whole number"],
    [['w'], { DRAIN_INIT_REWRITE: '15:20,nope' }, "invalid value 'nope' for DRAIN_INIT_REWRITE"],
  ])('%j %j', (argv, env, expected) => {
    const message = error(argv, env);
    expect(message).toContain(expected);
    expect(message).not.toContain('\n');
  });
});

it('keeps the version equal to package.json', () => {
  const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  expect(VERSION).toBe(packageJson.version);
});
