import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Lua scripts are imported as their text, as esbuild's text loader does in the build.
  plugins: [
    {
      name: 'lua-as-text',
      transform: (source, id) => (id.endsWith('.lua') ? `export default ${JSON.stringify(source)};` : undefined),
    },
  ],
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
