// The release executables' rest.ts: the build bundles it on its own (dist/rest.cjs) and bakes it into the
// single executable as an asset, with V8's code cache for it, so that the script V8 reads at start holds
// only what runs before the worker starts. It is compiled here, once the worker runs. Only Node's
// built-in modules are required from it: everything else is in its bundle.
import { dirname } from 'node:path';
import { getAsset } from 'node:sea';
import type * as Rest from './rest.js';
import { compileRest, REST_ASSET, REST_CACHE_ASSET } from './rest-script.js';

const rest = { exports: {} as typeof Rest };
compileRest(getAsset(REST_ASSET, 'utf8'), Buffer.from(getAsset(REST_CACHE_ASSET))).run(
  rest.exports,
  require,
  rest,
  process.execPath,
  dirname(process.execPath),
);
export const { supervise, createLogger } = rest.exports;
