/**
 * Bundles drain-init with esbuild, from one set of options:
 *   dist/drain-init.mjs  the CLI as one ES module (run by dist/main.mjs, which switches on the compile cache)
 *   dist/main.mjs        that entry point, not bundled
 *   dist/drain-init.cjs  the release executables' CLI (src/release-main.ts) as one CommonJS script: a
 *                        single executable's main script must be CommonJS. It holds only what runs before
 *                        the worker starts: src/rest.ts is replaced by src/release-rest.ts, which loads
 *   dist/rest.cjs        the rest (src/rest.ts: the supervisor, the logger), a CommonJS script of its own
 *                        that the release executables carry as an asset (scripts/build/binary.ts)
 *
 * Run with Node 24: node scripts/build/bundle.ts
 */
import { fileURLToPath } from 'node:url';
import { build, type BuildOptions, type Plugin } from 'esbuild';

// Lua scripts are bundled as text, so no build reads a file at run time.
const common: BuildOptions = { platform: 'node', target: 'node24', logLevel: 'warning', loader: { '.lua': 'text' } };
const cli: BuildOptions = { ...common, entryPoints: ['src/cli.ts'], bundle: true };
// import.meta.url only locates dist/drain_init.node; the release executables get the addon from their launcher.
const release: BuildOptions = { ...cli, format: 'cjs', logOverride: { 'empty-import-meta': 'silent' } };

/** src/cli.ts's `import('./rest.js')` loads the release executables' asset instead. */
const restFromAsset: Plugin = {
  name: 'rest-from-asset',
  setup(plugin) {
    plugin.onResolve({ filter: /^\.\/rest\.js$/ }, (args) =>
      args.importer.endsWith('/src/cli.ts')
        ? { path: fileURLToPath(new URL('../../src/release-rest.ts', import.meta.url)) }
        : undefined,
    );
  },
};

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
  build({ ...release, entryPoints: ['src/release-main.ts'], outfile: 'dist/drain-init.cjs', plugins: [restFromAsset] }),
  build({ ...release, entryPoints: ['src/rest.ts'], outfile: 'dist/rest.cjs' }),
]);
