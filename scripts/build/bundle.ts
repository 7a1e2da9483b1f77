/**
 * Bundles drain-init with esbuild, from one set of options:
 *   dist/drain-init.mjs  the CLI as one ES module (run by dist/main.mjs, which switches on the compile cache)
 *   dist/main.mjs        that entry point, not bundled
 *   dist/drain-init.cjs  the release executables' CLI (src/release-main.ts) as one CommonJS script: a
 *                        single executable's main script must be CommonJS
 *
 * Run with Node 24: node scripts/build/bundle.ts
 */
import { build, type BuildOptions } from 'esbuild';

// Lua scripts are bundled as text, so no build reads a file at run time.
const common: BuildOptions = { platform: 'node', target: 'node24', logLevel: 'warning', loader: { '.lua': 'text' } };
const cli: BuildOptions = { ...common, entryPoints: ['src/cli.ts'], bundle: true };

await Promise.all([
  build({
    ...cli,
    format: 'esm',
    outfile: 'dist/drain-init.mjs',
    // Bundled CommonJS dependencies call require(); an ES module has none of its own.
    banner: {
      js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
    },
  }),
  build({ ...common, entryPoints: ['src/main.ts'], format: 'esm', outfile: 'dist/main.mjs' }),
  build({
    ...cli,
    entryPoints: ['src/release-main.ts'],
    format: 'cjs',
    outfile: 'dist/drain-init.cjs',
    // import.meta.url only locates dist/drain_init.node; the release executables get the addon from their launcher.
    logOverride: { 'empty-import-meta': 'silent' },
  }),
]);
