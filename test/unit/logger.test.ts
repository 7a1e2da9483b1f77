import { expect, it } from 'vitest';
import { prettyLine } from '../../src/log/logger.js';

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
