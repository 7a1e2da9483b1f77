// The entry point: caching V8's compiled code halves start-up after the first run (skipped quietly
// where no temporary directory is writable), so it is switched on before the bundle loads.
import module from 'node:module';

module.enableCompileCache?.();
await import(new URL('./drain-init.mjs', import.meta.url).href);
