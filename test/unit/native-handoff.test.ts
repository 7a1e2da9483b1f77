import { describe, expect, it } from 'vitest';
import { readHandoff } from '../../src/native/handoff.js';

describe("the release launcher's handoff", () => {
  it('started by the glibc build: the addon, nothing to restore but its variable', () => {
    expect(readHandoff({ _DRAIN_INIT_ADDON: '/proc/self/fd/4', LD_PRELOAD: '/usr/lib/libjemalloc.so.2' })).toEqual({
      addonPath: '/proc/self/fd/4',
      libraryFds: [],
      restore: { _DRAIN_INIT_ADDON: undefined },
    });
  });

  it("started by the standalone build: its preloaded libraries' descriptors, and the caller's LD_PRELOAD back", () => {
    const env = {
      _DRAIN_INIT_ADDON: '/proc/self/fd/4',
      LD_PRELOAD: '/proc/self/fd/5 /proc/self/fd/6 /proc/self/fd/11',
      _DRAIN_INIT_LD_PRELOAD: '/usr/lib/libjemalloc.so.2',
    };
    expect(readHandoff(env)).toEqual({
      addonPath: '/proc/self/fd/4',
      libraryFds: [5, 6, 11],
      restore: {
        _DRAIN_INIT_ADDON: undefined,
        LD_PRELOAD: '/usr/lib/libjemalloc.so.2',
        _DRAIN_INIT_LD_PRELOAD: undefined,
      },
    });
  });

  it('the standalone build, the caller having no LD_PRELOAD: the variable goes', () => {
    const handoff = readHandoff({ LD_PRELOAD: '/proc/self/fd/5', _DRAIN_INIT_LD_PRELOAD: '' });
    expect(handoff.restore).toEqual({ LD_PRELOAD: undefined, _DRAIN_INIT_LD_PRELOAD: undefined });
  });

  it('not started by the launcher (a checkout, npm): nothing, and LD_PRELOAD is left alone', () => {
    expect(readHandoff({ LD_PRELOAD: '/proc/self/fd/5' })).toEqual({
      addonPath: undefined,
      libraryFds: [],
      restore: {},
    });
  });
});
