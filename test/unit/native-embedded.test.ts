import { describe, expect, it } from 'vitest';
import { addonScratchDirs } from '../../src/native/embedded.js';

describe('where the single executable writes its native addon', () => {
  it('tries TMPDIR first, then /tmp, /dev/shm, /run and /dev', () => {
    expect(addonScratchDirs({ TMPDIR: '/scratch' })).toEqual(['/scratch', '/tmp', '/dev/shm', '/run', '/dev']);
  });

  it('skips an unset or empty TMPDIR, and tries each directory once', () => {
    expect(addonScratchDirs({})).toEqual(['/tmp', '/dev/shm', '/run', '/dev']);
    expect(addonScratchDirs({ TMPDIR: '' })).toEqual(['/tmp', '/dev/shm', '/run', '/dev']);
    expect(addonScratchDirs({ TMPDIR: '/tmp' })).toEqual(['/tmp', '/dev/shm', '/run', '/dev']);
  });
});
