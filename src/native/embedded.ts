import { getRawAsset } from 'node:sea';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Where the single executable writes its embedded addon to load it, in order: the first directory that
 * is writable and allows executing wins. Docker mounts /dev/shm noexec, and `docker run --read-only`
 * leaves only /dev writable and executable, so /dev comes last.
 */
export function addonScratchDirs(env: NodeJS.ProcessEnv): string[] {
  const dirs = [env.TMPDIR, '/tmp', '/dev/shm', '/run', '/dev'].filter(
    (dir): dir is string => dir !== undefined && dir !== '',
  );
  return [...new Set(dirs)];
}

/**
 * Loads an addon embedded in the single executable as an asset: dlopen needs a file, so it is written to
 * a private directory in the first scratch directory that works and removed once loaded (the mapping
 * outlives the file). Returns the addon and where it was written; throws one line naming each directory
 * tried and why it failed.
 */
export function loadEmbedded<T>(
  asset: string,
  dlopen: (path: string) => T,
  dirs: readonly string[],
): { addon: T; path: string } {
  const bytes = new Uint8Array(getRawAsset(asset));
  const failures: string[] = [];
  for (const dir of dirs) {
    let scratch: string | undefined;
    try {
      scratch = mkdtempSync(join(dir, 'drain-init-'));
      const file = join(scratch, asset);
      writeFileSync(file, bytes, { mode: 0o500 });
      return { addon: dlopen(file), path: file };
    } catch (error) {
      failures.push(`${dir}: ${(error as Error).message.split('\n')[0] ?? ''}`);
    } finally {
      if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
    }
  }
  throw new Error(
    `no directory to write the embedded ${asset} to and load it from (${failures.join('; ')}): ` +
      'mount a writable tmpfs that allows executing (docker run --tmpfs /tmp:exec) or set TMPDIR to one',
  );
}
