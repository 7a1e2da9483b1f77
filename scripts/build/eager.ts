/**
 * V8's code cache in a single executable holds what V8 compiled when the script was first compiled: its
 * top level, and the functions V8 compiles eagerly, those wrapped in parentheses. esbuild makes each module
 * of the bundle that shares code with a dynamic import() a function called when first needed
 * (`var init_x = __esm({ "src/x.ts"() { ... } })`), which V8 compiles lazily at every start. The modules the
 * entry loads before the worker starts are rewritten as parenthesized function expressions, so that the code
 * cache holds them compiled; the rest stays lazy, as it is loaded once the worker runs.
 */
import type { Metafile } from 'esbuild';

/** The modules of `entry`'s static import graph (no dynamic import()), as the metafile names them. */
export function staticImports(metafile: Metafile, entry: string): Set<string> {
  const found = new Set<string>();
  const pending = [entry];
  for (let path = pending.pop(); path !== undefined; path = pending.pop()) {
    if (found.has(path)) continue;
    found.add(path);
    for (const imported of metafile.inputs[path]?.imports ?? [])
      if (imported.kind === 'import-statement' && !imported.external) pending.push(imported.path);
  }
  return found;
}

const MODULE_START = /^ {2}"([^"]+)"\(\) \{$/;

/**
 * Rewrites each `"path"() {` body of an __esm module named in `modules` as `"path": (function() { ... })`;
 * returns the code and the modules rewritten. esbuild indents a module's code under its opening line, so its
 * body ends at the first line `  }` followed by `});`.
 */
export function compileEagerly(code: string, modules: ReadonlySet<string>): { code: string; rewritten: string[] } {
  const lines = code.split('\n');
  const rewritten: string[] = [];
  for (let index = 1; index < lines.length; index++) {
    const path = MODULE_START.exec(lines[index] ?? '')?.[1];
    if (path === undefined || !modules.has(path) || !(lines[index - 1] ?? '').endsWith('= __esm({')) continue;
    const end = lines.findIndex((line, at) => at > index && line === '  }' && lines[at + 1] === '});');
    if (end === -1) throw new Error(`the end of module ${path} was not found in the bundle`);
    lines[index] = `  ${JSON.stringify(path)}: (function() {`;
    lines[end] = '  })';
    rewritten.push(path);
  }
  return { code: lines.join('\n'), rewritten };
}
