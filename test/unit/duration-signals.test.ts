import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/config/duration.js';
import { FORWARDED_SIGNALS, isForwardable, parseSignal, signalName } from '../../src/process/signals.js';
import { describeSpawnFailure, exitCodeFor } from '../../src/process/exit-status.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['45', 45_000],
    ['1.5', 1_500],
    ['0', 0],
    [' 10s ', 10_000],
  ])('%s is %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', 's', '-1', '1d', '10 s', '1e3', 'abc', '1.5.5', '25000h'])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow();
  });

  it('formats for logs', () => {
    expect(formatDuration(500)).toBe('500ms');
    expect(formatDuration(30_000)).toBe('30s');
    expect(formatDuration(2_500)).toBe('2.5s');
  });
});

describe('signals', () => {
  it('parses names, SIG-less names, lower case and numbers', () => {
    expect(parseSignal('TERM')).toBe(15);
    expect(parseSignal('SIGTSTP')).toBe(20);
    expect(parseSignal('usr1')).toBe(10);
    expect(parseSignal('9')).toBe(9);
    expect(signalName(20)).toBe('SIGTSTP');
    expect(signalName(6)).toBe('SIGABRT');
  });

  it('forwards every catchable signal once, but not KILL, STOP or CHLD', () => {
    for (const name of [
      'SIGHUP',
      'SIGINT',
      'SIGQUIT',
      'SIGUSR1',
      'SIGUSR2',
      'SIGTERM',
      'SIGALRM',
      'SIGWINCH',
      'SIGTTIN',
      'SIGTTOU',
      'SIGCONT',
      'SIGPIPE',
      'SIGTSTP',
      'SIGSEGV',
      'SIGPWR',
    ]) {
      expect(FORWARDED_SIGNALS).toContain(name);
    }
    expect(FORWARDED_SIGNALS).not.toContain('SIGKILL');
    expect(FORWARDED_SIGNALS).not.toContain('SIGSTOP');
    expect(FORWARDED_SIGNALS).not.toContain('SIGCHLD');
    expect(new Set(FORWARDED_SIGNALS).size).toBe(FORWARDED_SIGNALS.length);
    expect(isForwardable(9)).toBe(false);
    expect(isForwardable(15)).toBe(true);
  });
});

describe('exit status', () => {
  it('passes the code on, and 128+N for a signal', () => {
    expect(exitCodeFor({ kind: 'exited', code: 0 })).toBe(0);
    expect(exitCodeFor({ kind: 'exited', code: 7 })).toBe(7);
    expect(exitCodeFor({ kind: 'signaled', signal: 'SIGKILL' })).toBe(137);
    expect(exitCodeFor({ kind: 'signaled', signal: 'SIGTERM' })).toBe(143);
  });

  it('maps exec failures as tini does', () => {
    expect(exitCodeFor({ kind: 'spawn-failed', errno: 'ENOENT', message: '' })).toBe(127);
    expect(exitCodeFor({ kind: 'spawn-failed', errno: 'EACCES', message: '' })).toBe(126);
    expect(exitCodeFor({ kind: 'spawn-failed', errno: 'E2BIG', message: '' })).toBe(1);
    expect(describeSpawnFailure('nosuch', 'ENOENT')).toBe('command not found: nosuch');
    expect(describeSpawnFailure('/etc', 'EACCES')).toContain('cannot be executed');
  });
});
