import { describe, expect, it } from 'vitest';
import { parseStat } from '../../src/process/proc-state.js';

describe('parseStat', () => {
  it('reads pid, command, state, parent and process group', () => {
    expect(parseStat('1234 (sleep) S 1 1200 1200 0 -1 4194304 95 0 0 0 0 0 0 0 20 0 1 0 6047 2461696 208')).toEqual({
      pid: 1234,
      command: 'sleep',
      state: 'S',
      ppid: 1,
      pgrp: 1200,
    });
  });

  it('takes a command name holding spaces and parentheses whole', () => {
    expect(parseStat('77 (a) b (c) T 9 77 77 0')).toMatchObject({
      pid: 77,
      command: 'a) b (c',
      state: 'T',
      ppid: 9,
      pgrp: 77,
    });
  });

  it('rejects what is not a stat line', () => {
    expect(parseStat('')).toBeUndefined();
    expect(parseStat('12 no parentheses S 1 1')).toBeUndefined();
    expect(parseStat('12 (x)')).toBeUndefined();
  });
});
