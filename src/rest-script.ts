// How the release executables' second script (dist/rest.cjs, src/release-rest.ts) is compiled: at run time,
// and at build time to make its code cache (scripts/build/binary.ts), with the same parameters, as V8 only
// takes a code cache made for the same source compiled the same way.
import { compileFunction } from 'node:vm';

/** The assets' keys in the single executable. */
export const REST_ASSET = 'rest.cjs';
export const REST_CACHE_ASSET = 'rest.cache';

/** The parameters Node gives a single executable's main script. */
const PARAMETERS = ['exports', 'require', 'module', '__filename', '__dirname'];

export type RestScript = (
  exports: object,
  require: NodeJS.Require,
  module: { exports: object },
  filename: string,
  dirname: string,
) => void;

/**
 * Compiles the script with the code cache given, or makes one (`cachedData`) when none or an empty one is
 * given. A cache V8 refuses (made by another V8) only costs the time to compile without it.
 */
export function compileRest(source: string, cachedData?: Buffer): { run: RestScript; cachedData: Buffer | undefined } {
  const compiled = compileFunction(source, PARAMETERS, {
    filename: REST_ASSET,
    ...(cachedData === undefined || cachedData.length === 0 ? { produceCachedData: true } : { cachedData }),
  });
  return { run: compiled as RestScript, cachedData: compiled.cachedData };
}
