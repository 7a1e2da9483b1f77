import { describe, expect, it } from 'vitest';
import { exitCodeFor, remapExitCode } from '../../src/process/exit-status.js';

describe('remapExitCode', () => {
  it('turns a listed status into 0 and keeps every other', () => {
    const listed = new Set([143, 1]);
    expect(remapExitCode(exitCodeFor({ kind: 'signaled', signal: 'SIGTERM' }), listed)).toBe(0);
    expect(remapExitCode(exitCodeFor({ kind: 'exited', code: 143 }), listed)).toBe(0);
    expect(remapExitCode(1, listed)).toBe(0);
    expect(remapExitCode(137, listed)).toBe(137);
    expect(remapExitCode(2, new Set())).toBe(2);
  });
});
