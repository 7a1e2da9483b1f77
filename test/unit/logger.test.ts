import { expect, it } from 'vitest';
import { loggingFor, prettyLine } from '../../src/log/logger.js';

it('renders a pino line readably', () => {
  const line = JSON.stringify({
    level: 30,
    time: Date.UTC(2026, 10, 22, 6, 40),
    pid: 1,
    name: 'drain-init',
    msg: 'forwarded signal',
    signal: 'SIGUSR1',
    childPid: 7,
  });
  expect(prettyLine(line)).toBe('2026-11-22T06:40:00.000Z INFO  forwarded signal signal=SIGUSR1 childPid=7\n');
});

it('passes a line that is not JSON through untouched', () => {
  expect(prettyLine('not json\n')).toBe('not json\n');
});

it('logs JSON at info for a log collector, and readable lines at warn on a terminal, as quiet as tini at start and exit', () => {
  const unset = { logLevel: undefined, logFormat: undefined, verbosity: 0 } as const;
  expect(loggingFor(unset, false)).toEqual({ level: 'info', format: 'json' });
  expect(loggingFor(unset, true)).toEqual({ level: 'warn', format: 'pretty' });
  expect(loggingFor({ ...unset, verbosity: 1 }, true)).toEqual({ level: 'info', format: 'pretty' });
  expect(loggingFor({ ...unset, logFormat: 'json' }, true)).toEqual({ level: 'info', format: 'json' });
  expect(loggingFor({ ...unset, logFormat: 'pretty' }, false)).toEqual({ level: 'info', format: 'pretty' });
  expect(loggingFor({ ...unset, logLevel: 'debug' }, true)).toEqual({ level: 'debug', format: 'pretty' });
});
