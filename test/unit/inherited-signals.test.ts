import { describe, expect, it } from 'vitest';
import {
  INHERITED_SIGNALS_VAR,
  formatSignalSet,
  isDefaultSignalState,
  parseSignalState,
  signalSetNames,
  takeInheritedSignals,
} from '../../src/process/inherited-signals.js';

describe('the inherited signal state handed over as <SigBlk>:<SigIgn>', () => {
  it('reads the hex words as /proc/<pid>/status prints them', () => {
    expect(parseSignalState('0000000000000200:0000000000000001')).toEqual({ blocked: 0x200n, ignored: 1n });
    expect(parseSignalState('8000000000000000:0')).toEqual({ blocked: 1n << 63n, ignored: 0n });
    expect(parseSignalState('fffffffe7ffbfeff:ABC')).toEqual({ blocked: 0xfffffffe7ffbfeffn, ignored: 0xabcn });
  });

  it.each(['', ':', '200', '200:', ':1', '200:1:3', '0x200:1', '12345678901234567:0', 'zz:0', '200 1'])(
    'rejects %j with one line',
    (text) => expect(() => parseSignalState(text)).toThrow(/is not <SigBlk>:<SigIgn>/),
  );

  it('writes a set back as the exec helper reads it, and names its signals', () => {
    expect(formatSignalSet(0x200n)).toBe('0000000000000200');
    expect(formatSignalSet(1n << 63n)).toBe('8000000000000000');
    expect(signalSetNames(0x200n | 1n | (1n << 39n))).toEqual(['SIGHUP', 'SIGUSR1', 'SIG40']);
    expect(isDefaultSignalState({ blocked: 0n, ignored: 0n })).toBe(true);
    expect(isDefaultSignalState({ blocked: 0n, ignored: 1n })).toBe(false);
  });

  it('is taken out of the environment, so that no worker sees it', () => {
    const env: NodeJS.ProcessEnv = { [INHERITED_SIGNALS_VAR]: '0000000000000200:0000000000000001', PATH: '/bin' };
    expect(takeInheritedSignals(env)).toEqual({ state: { blocked: 0x200n, ignored: 1n } });
    expect(env).toEqual({ PATH: '/bin' });
    const bad: NodeJS.ProcessEnv = { [INHERITED_SIGNALS_VAR]: 'nohup' };
    expect(takeInheritedSignals(bad).error).toMatch(/'nohup' is not <SigBlk>:<SigIgn>/);
    expect(bad).toEqual({});
    expect(takeInheritedSignals({})).toEqual({});
  });
});
