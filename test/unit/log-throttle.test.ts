import { describe, expect, it } from 'vitest';
import { ThrottledWarnings } from '../../src/log/throttle.js';
import { captureLogger } from '../helpers/fake.js';

describe('throttled warnings', () => {
  it('logs a kind once per interval and counts what it held back', () => {
    let now = 0;
    const { log, records } = captureLogger();
    const warnings = new ThrottledWarnings(log, 60_000, { now: () => now });
    for (let request = 0; request < 1_000; request++)
      warnings.warn('HPE_INVALID_METHOD', { reason: 'Parse Error' }, 'bad request');
    warnings.warn('drop', {}, 'too many connections');
    now = 60_000;
    warnings.warn('HPE_INVALID_METHOD', { reason: 'Parse Error' }, 'bad request');
    now = 120_000;
    warnings.warn('HPE_INVALID_METHOD', { reason: 'Parse Error' }, 'bad request');
    expect(records.map(({ msg, heldBack }) => ({ msg, heldBack }))).toEqual([
      { msg: 'bad request', heldBack: undefined },
      { msg: 'too many connections', heldBack: undefined },
      { msg: 'bad request', heldBack: 999 },
      { msg: 'bad request', heldBack: undefined },
    ]);
  });

  it('remembers a bounded number of kinds, forgetting the oldest', () => {
    const { log, records } = captureLogger();
    const warnings = new ThrottledWarnings(log, 60_000, { now: () => 0 }, 2);
    for (const kind of ['a', 'b', 'c', 'a']) warnings.warn(kind, {}, kind);
    expect(records.map((record) => record.msg)).toEqual(['a', 'b', 'c', 'a']);
  });

  it('makes one line of a burst per kind, with the count of the others alike, throttled as any warning', () => {
    const { log, records } = captureLogger();
    const warnings = new ThrottledWarnings(log, 60_000, { now: () => 0 });
    const burst = [...Array.from({ length: 5_000 }, (_, i) => `job "peer" entry ${i} skipped`), 'key "other" skipped'];
    const kindOf = (message: string): string => /"([^"]*)"/.exec(message)?.[1] ?? message;
    warnings.warnGrouped(burst, kindOf);
    warnings.warnGrouped(burst, kindOf);
    expect(records.map(({ msg, alike }) => ({ msg, alike }))).toEqual([
      { msg: 'job "peer" entry 0 skipped', alike: 4_999 },
      { msg: 'key "other" skipped', alike: undefined },
    ]);
  });
});
