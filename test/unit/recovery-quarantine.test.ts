import { describe, expect, it } from 'vitest';
import { Quarantine, UNFETCHED_WAIT_MS } from '../../src/recovery/quarantine.js';

describe('Quarantine', () => {
  it('releases held jobs one at a time, in the order they were held, the next once the one out has finished', () => {
    const quarantine = new Quarantine();
    quarantine.hold('a');
    quarantine.hold('b');
    expect(quarantine.next(0)).toBe('a');
    expect(quarantine.next(1)).toBeUndefined();
    quarantine.fetched('a');
    expect(quarantine.next(UNFETCHED_WAIT_MS * 10)).toBeUndefined();
    quarantine.settled('a');
    expect(quarantine.next(UNFETCHED_WAIT_MS * 10)).toBe('b');
    expect(quarantine.size).toBe(0);
  });

  it('moves on when the job released was not fetched here in time (another pod took it)', () => {
    const quarantine = new Quarantine();
    quarantine.hold('a');
    quarantine.hold('b');
    expect(quarantine.next(1_000)).toBe('a');
    expect(quarantine.next(1_000 + UNFETCHED_WAIT_MS - 1)).toBeUndefined();
    expect(quarantine.next(1_000 + UNFETCHED_WAIT_MS)).toBe('b');
  });

  it('frees the next one when the job out is held again (its worker died before it finished)', () => {
    const quarantine = new Quarantine();
    quarantine.hold('a');
    quarantine.hold('b');
    expect(quarantine.next(0)).toBe('a');
    quarantine.fetched('a');
    quarantine.hold('a');
    expect(quarantine.next(1)).toBe('b');
    quarantine.settled('b');
    expect(quarantine.next(2)).toBe('a');
  });

  it('ignores what concerns other jobs than the one out', () => {
    const quarantine = new Quarantine();
    quarantine.hold('a');
    expect(quarantine.next(0)).toBe('a');
    quarantine.fetched('x');
    quarantine.settled('y');
    quarantine.hold('b');
    expect(quarantine.next(1)).toBeUndefined();
  });

  it('holds a release Redis refused again, last, and hands every held job over at the end', () => {
    const quarantine = new Quarantine();
    quarantine.hold('a');
    quarantine.hold('b');
    expect(quarantine.next(0)).toBe('a');
    quarantine.unreleased('a');
    expect(quarantine.next(1)).toBe('b');
    quarantine.hold('c');
    expect(quarantine.takeAll()).toEqual(['a', 'c']);
    expect(quarantine.size).toBe(0);
  });
});
