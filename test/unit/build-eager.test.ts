// The release bundle's start-up modules are compiled eagerly (scripts/build/eager.ts): found from the
// metafile's static imports, rewritten as parenthesized functions, and the bundle runs as before.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { expect, it } from 'vitest';
import { compileEagerly, staticImports } from '../../scripts/build/eager.js';

it('rewrites the modules the entry imports statically and leaves those only a dynamic import() reaches lazy', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'eager-'));
  const file = (name: string, text: string): void => writeFileSync(join(dir, name), text);
  file(
    'entry.ts',
    "import { early } from './early.ts';\nconsole.log(early());\nvoid import('./late.ts').then((late) => console.log(late.late()));\n",
  );
  file('early.ts', "import { shared } from './shared.ts';\nexport const early = () => `early ${shared}`;\n");
  file('shared.ts', "export const shared = 'shared';\n");
  file('late.ts', "import { shared } from './shared.ts';\nexport const late = () => `late ${shared}`;\n");
  const result = await build({
    entryPoints: [join(dir, 'entry.ts')],
    bundle: true,
    format: 'cjs',
    platform: 'node',
    metafile: true,
    write: false,
    absWorkingDir: dir,
  });
  const early = staticImports(result.metafile, 'entry.ts');
  expect([...early].sort()).toEqual(['early.ts', 'entry.ts', 'shared.ts']);
  const { code, rewritten } = compileEagerly(result.outputFiles[0]?.text ?? '', early);
  expect(rewritten).toEqual(['shared.ts']);
  expect(code).toContain('"shared.ts": (function() {');
  expect(code).toMatch(/^ {2}"late\.ts"\(\) \{$/m);
  const bundle = join(dir, 'bundle.cjs');
  writeFileSync(bundle, code);
  expect(execFileSync(process.execPath, [bundle], { encoding: 'utf8' })).toBe('early shared\nlate shared\n');
});

it('fails when a module it must rewrite has no end it recognises', () => {
  const code = 'var init_x = __esm({\n  "x.ts"() {\n    run();\n';
  expect(() => compileEagerly(code, new Set(['x.ts']))).toThrow('the end of module x.ts was not found');
});
