// The code's layout as each folder's README.md states it: what the folder owns, and the only folders of
// src/ it may import from. This test holds every import to those lines, so the layers cannot drift.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/pid1.js';

const SRC = join(ROOT, 'src');
/** Files at the top of src/ that any folder may import. */
const SHARED_FILES = new Set(['version']);

const folders = readdirSync(SRC).filter((name) => statSync(join(SRC, name)).isDirectory());

function readme(folder: string): { owns: string; imports: string[] } {
  const [owns = '', imports = ''] = readFileSync(join(SRC, folder, 'README.md'), 'utf8').split('\n');
  const listed = /^Imports from src\/: (.*)\.$/.exec(imports)?.[1];
  if (!owns.startsWith('Owns: ') || listed === undefined)
    throw new Error(`src/${folder}/README.md: expected "Owns: ..." then "Imports from src/: ...".`);
  return { owns, imports: listed === 'nothing' ? [] : listed.split(', ') };
}

/** The src/ folder (or top-level file) each relative import of a folder's TypeScript files reaches. */
function importedFrom(folder: string): Map<string, string[]> {
  const reached = new Map<string, string[]>();
  for (const file of readdirSync(join(SRC, folder)).filter((name) => name.endsWith('.ts'))) {
    const text = readFileSync(join(SRC, folder, file), 'utf8');
    for (const [, path = ''] of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = /^\.\.\/([^/]+)/.exec(path)?.[1]?.replace(/\.js$/, '');
      if (target === undefined) continue;
      reached.set(target, [...(reached.get(target) ?? []), file]);
    }
  }
  return reached;
}

describe('the layout of src/', () => {
  it('gives every folder a README that says what it owns and what it may import', () => {
    expect(folders.length).toBeGreaterThan(10);
    for (const folder of folders) expect(() => readme(folder)).not.toThrow();
  });

  it.each(folders)('src/%s imports only what its README allows', (folder) => {
    const allowed = new Set([...readme(folder).imports, ...SHARED_FILES]);
    const refused = [...importedFrom(folder)].filter(([target]) => !allowed.has(target));
    expect(refused.map(([target, files]) => `${target} (from ${files.join(', ')})`)).toEqual([]);
  });

  it('has no cycle: each folder may import only folders that may not import it back', () => {
    const imports = new Map(folders.map((folder) => [folder, new Set(readme(folder).imports)]));
    const reaches = (from: string, to: string, seen = new Set<string>()): boolean => {
      if (seen.has(from)) return false;
      seen.add(from);
      return [...(imports.get(from) ?? [])].some((next) => next === to || reaches(next, to, seen));
    };
    expect(folders.filter((folder) => reaches(folder, folder))).toEqual([]);
  });
});
