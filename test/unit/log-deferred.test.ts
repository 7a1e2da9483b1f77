import { describe, expect, it } from 'vitest';
import { DeferredLogger } from '../../src/log/deferred.js';
import type { Logger } from '../../src/log/logger.js';

/** A logger as pino would be: each line with the time its clock gives, and its level. */
function recordingLogger(now: () => number, lines: unknown[]): Logger {
  const at =
    (level: string) =>
    (first: object | string, message?: string): void => {
      lines.push(
        typeof first === 'string' ? { level, time: now(), msg: first } : { level, time: now(), ...first, msg: message },
      );
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('DeferredLogger', () => {
  it('holds the lines logged before the logger is ready and writes them first, in order, each with its own time', () => {
    let clock = 1_000;
    const log = new DeferredLogger(() => clock);
    log.info({ version: '1' }, 'drain-init starting');
    clock = 1_004;
    log.warn('no subreaper');
    clock = 1_009;
    log.debug({ path: '/x' }, 'addon loaded');
    clock = 1_020;
    const lines: unknown[] = [];
    log.ready((now) => recordingLogger(now, lines));
    expect(lines).toEqual([
      { level: 'info', time: 1_000, version: '1', msg: 'drain-init starting' },
      { level: 'warn', time: 1_004, msg: 'no subreaper' },
      { level: 'debug', time: 1_009, path: '/x', msg: 'addon loaded' },
    ]);
  });

  it('writes straight through once ready, with the time of the moment', () => {
    let clock = 5;
    const log = new DeferredLogger(() => clock);
    log.error('early');
    const lines: unknown[] = [];
    log.ready((now) => recordingLogger(now, lines));
    clock = 50;
    log.info({ childPid: 7 }, 'started child');
    expect(lines).toEqual([
      { level: 'error', time: 5, msg: 'early' },
      { level: 'info', time: 50, childPid: 7, msg: 'started child' },
    ]);
  });
});
