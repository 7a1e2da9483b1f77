// The release executables' second script is compiled at run time as at build time (src/rest-script.ts):
// with the parameters of a single executable's main script, and with the code cache the build made.
import { createRequire } from 'node:module';
import { expect, it } from 'vitest';
import { compileRest } from '../../src/rest-script.js';

const SOURCE =
  "module.exports.seen = { exports: exports === module.exports, file: __filename, dir: __dirname, sep: require('node:path').sep };";

function run(cachedData?: Buffer): { cachedData: Buffer | undefined; seen: unknown } {
  const compiled = compileRest(SOURCE, cachedData);
  const module = { exports: {} as { seen?: unknown } };
  compiled.run(module.exports, createRequire(import.meta.url), module, '/usr/local/bin/drain-init', '/usr/local/bin');
  return { cachedData: compiled.cachedData, seen: module.exports.seen };
}

it('gives the script the parameters of a main script, and makes a code cache when given none', () => {
  const { cachedData, seen } = run();
  expect(seen).toEqual({ exports: true, file: '/usr/local/bin/drain-init', dir: '/usr/local/bin', sep: '/' });
  expect(cachedData?.length).toBeGreaterThan(0);
});

it('runs the same with the code cache it made, and with an empty one (another CPU)', () => {
  const made = run().cachedData;
  expect(run(made).seen).toEqual(run().seen);
  expect(run(Buffer.alloc(0)).seen).toEqual(run().seen);
});
