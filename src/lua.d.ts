// Lua scripts are imported as text: esbuild's text loader in the build, a small plugin in vitest.config.ts.
declare module '*.lua' {
  const source: string;
  export default source;
}
