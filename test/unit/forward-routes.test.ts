import { describe, expect, it } from 'vitest';
import { nativeRoutes } from '../../src/process/forward.js';
import { parseSignal } from '../../src/process/signals.js';
import { startsStop } from '../../src/stop/sequence.js';

describe('the signals the native handler forwards', () => {
  const [HUP, USR1, USR2, TERM, INT, QUIT] = ['HUP', 'USR1', 'USR2', 'TERM', 'INT', 'QUIT'].map(parseSignal);
  const rewrite = new Map([
    [USR1 ?? 0, TERM ?? 0],
    [HUP ?? 0, 0],
    [QUIT ?? 0, USR2 ?? 0],
  ]);
  const received = [HUP, USR1, USR2, TERM, INT, QUIT].map(Number);

  it('are all but the stop signals, after --rewrite, and those it drops', () => {
    expect(nativeRoutes(received, rewrite, startsStop)).toEqual([
      [USR2, USR2],
      [QUIT, USR2],
    ]);
  });

  it('leave the restart signal, after --rewrite, to the interceptor too', () => {
    const mayTake = (signal: number) => startsStop(signal) || signal === USR2;
    expect(nativeRoutes(received, rewrite, mayTake)).toEqual([]);
  });
});
