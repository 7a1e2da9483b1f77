import { describe, expect, it } from 'vitest';
import { nativeRoutes } from '../../src/process/forward.js';
import { parseSignal } from '../../src/process/signals.js';

describe('the signals the native handler forwards', () => {
  const [HUP, USR1, USR2, TERM, INT, QUIT] = ['HUP', 'USR1', 'USR2', 'TERM', 'INT', 'QUIT'].map(parseSignal);

  it('are all but the stop signals, after --rewrite, and those it drops', () => {
    const rewrite = new Map([
      [USR1 ?? 0, TERM ?? 0],
      [HUP ?? 0, 0],
      [QUIT ?? 0, USR2 ?? 0],
    ]);
    expect(nativeRoutes([HUP, USR1, USR2, TERM, INT, QUIT].map(Number), rewrite)).toEqual([
      [USR2, USR2],
      [QUIT, USR2],
    ]);
  });
});
