/**
 * Bundles drain-init with esbuild, from one set of options:
 *   dist/drain-init.mjs  the CLI as one ES module (run by dist/main.mjs, which switches on the compile cache)
 *   dist/main.mjs        that entry point, not bundled
 *   dist/drain-init.cjs  the release executables' CLI (src/release-main.ts) as one CommonJS script: a
 *                        single executable's main script must be CommonJS; the modules loaded before the
 *                        worker starts are compiled eagerly, into V8's code cache (eager.ts)
 *
 * Run with Node 24: node scripts/build/bundle.ts
 */
import { writeFileSync } from 'node:fs';
import { build, type BuildOptions } from 'esbuild';
import { compileEagerly, staticImports } from './eager.ts';

// Lua scripts are bundled as text, so no build reads a file at run time.
const common: BuildOptions = { platform: 'node', target: 'node24', logLevel: 'warning', loader: { '.lua': 'text' } };
const cli: BuildOptions = { ...common, entryPoints: ['src/cli.ts'], bundle: true };

const RELEASE_ENTRY = 'src/release-main.ts';
const RELEASE_OUT = 'dist/drain-init.cjs';

/** The release bundle, with the modules loaded before the worker starts compiled eagerly. */
async function buildRelease(): Promise<void> {
  const result = await build({
    ...cli,
    entryPoints: [RELEASE_ENTRY],
    format: 'cjs',
    outfile: RELEASE_OUT,
    // import.meta.url only locates dist/drain_init.node; the release executables get the addon from their launcher.
    logOverride: { 'empty-import-meta': 'silent' },
    metafile: true,
    write: false,
  });
  const early = staticImports(result.metafile, RELEASE_ENTRY);
  const [output] = result.outputFiles;
  if (output === undefined) throw new Error(`esbuild wrote no ${RELEASE_OUT}`);
  const { code, rewritten } = compileEagerly(output.text, early);
  // Every module of the static graph is either rewritten or plain top-level code (never lazy).
  if (rewritten.length === 0) throw new Error('no module of the start-up was found in the bundle');
  writeFileSync(RELEASE_OUT, code);
}

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
  buildRelease(),
]);
