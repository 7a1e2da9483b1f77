import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type Config } from '../../src/config/parse.js';
import { helpText } from '../../src/config/help.js';
import { loggingFor, type LogLevel } from '../../src/log/logger.js';
import { OPTIONS, envName } from '../../src/config/options.js';
import { VERSION } from '../../src/version.js';

function config(argv: string[], env: Record<string, string> = {}): Config {
  const result = parseConfig(argv, env);
  if (result.kind !== 'run') throw new Error(`expected a run, got ${result.kind}`);
  return result.config;
}

/** The level drain-init logs at when stderr is not a terminal. */
function levelOf(parsed: Config): LogLevel {
  return loggingFor(parsed, false).level;
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
    expect(levelOf(parsed)).toBe('info');
  });

  it('has the documented defaults', () => {
    const parsed = config(['--', 'worker']);
    expect(parsed).toMatchObject({
      subreaper: false,
      processGroup: false,
      logLevel: undefined,
      logFormat: undefined,
      verbosity: 0,
      preset: 'auto',
      gracePeriodMs: undefined,
      stopDelayMs: 0,
      restartSignal: undefined,
      shutdownTimeoutMs: undefined,
      stopMarginMs: undefined,
      killMarginMs: 2_000,
      quietSignal: undefined,
      stopSignal: undefined,
    });
    expect(parsed.rewrite.size).toBe(0);
  });

  it('accepts --name value and --name=value', () => {
    expect(config(['--grace-period', '2m', 'w']).gracePeriodMs).toBe(120_000);
    expect(config(['--grace-period=500ms', 'w']).gracePeriodMs).toBe(500);
  });

  it('combines short flags and counts -v', () => {
    const parsed = config(['-sgvv', '--', 'w']);
    expect(parsed).toMatchObject({ subreaper: true, processGroup: true, verbosity: 2 });
    expect(levelOf(parsed)).toBe('trace');
    expect(levelOf(config(['-v', 'w']))).toBe('debug');
    expect(levelOf(config(['-v', '--log-level', 'warn', 'w']))).toBe('info');
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
    expect(levelOf(config(['w'], { DRAIN_INIT_VERBOSE: '2' }))).toBe('trace');
  });

  it('treats an empty value as unset', () => {
    expect(config(['w'], { DRAIN_INIT_GRACE_PERIOD: '' }).gracePeriodMs).toBeUndefined();
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
    [
      ['--grace-period', 'soon', 'w'],
      {},
      "invalid value 'soon' for --grace-period: expected a duration such as 500ms, 30s, 2m, 1h or bare seconds",
    ],
    [['--kill-margin', '-1', 'w'], {}, "invalid value '-1' for --kill-margin"],
    [['--grace-period', '999h', 'w'], {}, 'longer than the maximum of 24 days'],
    [
      ['--log-level', 'loud', 'w'],
      {},
      "invalid value 'loud' for --log-level: expected one of trace, debug, info, warn, error, fatal, silent",
    ],
    [['--log-format', 'xml', 'w'], {}, 'expected one of json, pretty'],
    [['--preset', 'rails', 'w'], {}, 'expected one of auto, sidekiq, generic'],
    [['--stop-signal', 'SIGFOO', 'w'], {}, "unknown signal 'SIGFOO'"],
    [['--stop-signal', '99', 'w'], {}, 'unknown signal number 99'],
    [['--rewrite', '15', 'w'], {}, 'expected FROM:TO'],
    [['--rewrite', 'KILL:TERM', 'w'], {}, 'signal KILL cannot be caught'],
    [['--rewrite', 'TERM:bogus', 'w'], {}, "unknown signal 'bogus'"],
    [[], {}, 'no command given: usage is drain-init [options] -- <command> [args...]'],
    [['--'], {}, 'no command given'],
    [
      ['w'],
      { DRAIN_INIT_GRACE_PERIODS: '1' },
      'unknown environment variable DRAIN_INIT_GRACE_PERIODS; see drain-init --help',
    ],
    [['w'], { DRAIN_INIT_GRACE_PERIOD: '1y' }, "invalid value '1y' for DRAIN_INIT_GRACE_PERIOD"],
    [
      ['w'],
      { DRAIN_INIT_SUBREAPER: 'maybe' },
      "invalid value 'maybe' for DRAIN_INIT_SUBREAPER: expected one of 1, true, yes, on, 0, false, no, off",
    ],
    [['w'], { DRAIN_INIT_VERBOSE: 'lots' }, "invalid value 'lots' for DRAIN_INIT_VERBOSE: expected a whole number"],
    [['w'], { DRAIN_INIT_REWRITE: '15:20,nope' }, "invalid value 'nope' for DRAIN_INIT_REWRITE"],
  ])('%j %j', (argv, env, expected) => {
    const message = error(argv, env);
    expect(message).toContain(expected);
    expect(message).not.toContain('\n');
  });
});

describe('job recovery and restart', () => {
  it('recovers every queue and never restarts by default', () => {
    expect(config(['w'])).toMatchObject({
      recovery: true,
      recoveryQueues: undefined,
      restart: { policy: 'never', firstDelayMs: 1_000, maxDelayMs: 60_000 },
    });
  });

  it('turns recovery off and limits it to queues, from flags or env vars', () => {
    expect(config(['--recovery', 'off', 'w']).recovery).toBe(false);
    expect(config(['w'], { DRAIN_INIT_RECOVERY: 'no' }).recovery).toBe(false);
    expect(config(['--recovery-queues', 'critical', '--recovery-queues', 'default', 'w']).recoveryQueues).toEqual(
      new Set(['critical', 'default']),
    );
    expect(config(['w'], { DRAIN_INIT_RECOVERY_QUEUES: 'critical, mailers' }).recoveryQueues).toEqual(
      new Set(['critical', 'mailers']),
    );
  });

  it('takes the restart policy and its backoff', () => {
    const parsed = config(['--restart', 'on-failure', '--restart-delay', '500ms', '--restart-max-delay', '30s', 'w']);
    expect(parsed.restart).toEqual({ policy: 'on-failure', firstDelayMs: 500, maxDelayMs: 30_000 });
    expect(config(['w'], { DRAIN_INIT_RESTART: 'always' }).restart.policy).toBe('always');
  });

  it.each([
    [
      ['--recovery', 'maybe', 'w'],
      {},
      "invalid value 'maybe' for --recovery: expected one of 1, true, yes, on, 0, false, no, off",
    ],
    [
      ['--recovery-queues', 'a b', 'w'],
      {},
      "invalid value 'a b' for --recovery-queues: expected a non-empty name without spaces or control characters",
    ],
    [
      ['--restart', 'sometimes', 'w'],
      {},
      "invalid value 'sometimes' for --restart: expected one of never, on-failure, always",
    ],
    [['--restart-delay', '0', 'w'], {}, "invalid value '0' for --restart-delay: must be at least 1ms"],
    [
      ['--restart-max-delay', '2s', 'w'],
      { DRAIN_INIT_RESTART_DELAY: '5s' },
      '--restart-max-delay: the restart delay (5s) must not be longer than the maximum restart delay (2s)',
    ],
    [
      ['--restart-delay', '2m', 'w'],
      {},
      '--restart-delay: the restart delay (120s) must not be longer than the maximum restart delay (60s)',
    ],
  ])('rejects %j %j', (argv, env, expected) => {
    expect(error(argv, env)).toBe(expected);
  });
});

describe('exit remapping, leftovers and job control', () => {
  it('has their defaults: no remap, a 2 s leftover grace, no job control', () => {
    expect(config(['w'])).toMatchObject({ remapExit: new Set(), leftoverGraceMs: 2_000, jobControl: false });
  });

  it('takes -e as tini does, with its value in the same word or the next, repeatable', () => {
    expect(config(['-e', '143', '-e1', '--remap-exit=2', '--', 'w']).remapExit).toEqual(new Set([143, 1, 2]));
    const grouped = config(['-ge', '143', 'w']);
    expect(grouped.processGroup).toBe(true);
    expect(grouped.remapExit).toEqual(new Set([143]));
    expect(config(['-e', '143', 'java', '-e', '5']).args).toEqual(['-e', '5']);
  });

  it('reads them from the environment', () => {
    const parsed = config(['w'], {
      DRAIN_INIT_REMAP_EXIT: '143, 130',
      DRAIN_INIT_LEFTOVER_GRACE: '0',
      DRAIN_INIT_JOB_CONTROL: 'yes',
    });
    expect(parsed).toMatchObject({ remapExit: new Set([143, 130]), leftoverGraceMs: 0, jobControl: true });
    expect(config(['--leftover-grace', '500ms', '--job-control', 'w'])).toMatchObject({
      leftoverGraceMs: 500,
      jobControl: true,
    });
  });

  it.each([
    [['-e', '256', 'w'], {}, "invalid value '256' for -e: expected an exit status from 0 to 255"],
    [['-e', 'x', 'w'], {}, "invalid value 'x' for -e: expected an exit status from 0 to 255"],
    [['-e'], {}, 'option -e needs a value (CODE)'],
    [['--leftover-grace', 'soon', 'w'], {}, "invalid value 'soon' for --leftover-grace"],
    [['w'], { DRAIN_INIT_REMAP_EXIT: '143,-1' }, "invalid value '-1' for DRAIN_INIT_REMAP_EXIT"],
    [['--job-control=1', 'w'], {}, 'option --job-control takes no value'],
  ])('%j %j fails with one line', (argv, env, expected) => {
    const message = error(argv, env);
    expect(message).toContain(expected);
    expect(message).not.toContain('\n');
  });
});

describe('the probe endpoint', () => {
  it('listens on 0.0.0.0:7433 with a Redis URL and fails liveness after a 60 s old heartbeat', () => {
    expect(config(['w'], { REDIS_URL: 'redis://r' })).toMatchObject({
      probePort: 7433,
      probeHost: '0.0.0.0',
      maxBeatAgeMs: 60_000,
    });
  });

  it('opens no port without a Redis URL unless asked, as tini opens none', () => {
    expect(config(['w']).probePort).toBe(0);
    expect(config(['--redis-url', 'none', 'w'], { REDIS_URL: 'redis://r' }).probePort).toBe(0);
    expect(config(['w'], { DRAIN_INIT_PROBE_PORT: '7433' }).probePort).toBe(7433);
    expect(config(['--probe-port', '9000', 'w']).probePort).toBe(9000);
  });

  it('takes its port (0 for none), address and heartbeat age from flags or env vars', () => {
    expect(config(['--probe-port', '0', '--probe-host', '127.0.0.1', '--max-beat-age', '2m', 'w'])).toMatchObject({
      probePort: 0,
      probeHost: '127.0.0.1',
      maxBeatAgeMs: 120_000,
    });
    expect(
      config(['w'], { DRAIN_INIT_PROBE_PORT: '9000', DRAIN_INIT_PROBE_HOST: '::', DRAIN_INIT_MAX_BEAT_AGE: '90' }),
    ).toMatchObject({ probePort: 9000, probeHost: '::', maxBeatAgeMs: 90_000 });
    expect(config(['--probe-host', 'localhost', 'w']).probeHost).toBe('localhost');
  });

  it.each([
    [
      ['--probe-port', '65536', 'w'],
      {},
      "invalid value '65536' for --probe-port: expected a port number from 1 to 65535, or 0 for none",
    ],
    [
      ['--probe-port', 'http', 'w'],
      {},
      "invalid value 'http' for --probe-port: expected a port number from 1 to 65535, or 0 for none",
    ],
    [
      ['w'],
      { DRAIN_INIT_PROBE_PORT: '-1' },
      "invalid value '-1' for DRAIN_INIT_PROBE_PORT: expected a port number from 1 to 65535, or 0 for none",
    ],
    [
      ['--probe-host', 'http://0.0.0.0', 'w'],
      {},
      "invalid value 'http://0.0.0.0' for --probe-host: expected an IP address (0.0.0.0, ::, 127.0.0.1) or a host name",
    ],
    [['--max-beat-age', '0', 'w'], {}, "invalid value '0' for --max-beat-age: must be at least 1ms"],
  ])('rejects %j %j', (argv, env, expected) => {
    expect(error(argv, env)).toBe(expected);
  });
});

it('keeps the version equal to package.json', () => {
  const packageJson = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  expect(VERSION).toBe(packageJson.version);
});
