/**
 * The release (npm run release, after npm run build:binary):
 *
 *   dist/release/drain-init-<version>-linux-<arch>-<variant>   the executables of scripts/build/binary.ts
 *   dist/release/SHA256SUMS                                    their checksums (sha256sum -c SHA256SUMS)
 *   drain-init:<version>                                       a local image, FROM scratch, holding this
 *                                                              machine's executables only: /drain-init
 *                                                              (standalone) and /drain-init-glibc
 *
 * so that an image adds drain-init with `COPY --from=drain-init:<version> /drain-init /usr/local/bin/drain-init`.
 *
 *   node scripts/build/release.ts          all of it
 *   node scripts/build/release.ts image    the image only (the Docker tests make it from dist/bin)
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ARCHS, VARIANTS, binaryPath, type Arch } from './binary.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const RELEASE = join(ROOT, 'dist/release');

function fail(message: string): never {
  process.stderr.write(`release: ${message}\n`);
  process.exit(1);
}

function version(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

function built(arch: Arch, variant: (typeof VARIANTS)[number]): string {
  const file = binaryPath(arch, variant);
  if (!existsSync(file)) fail(`${file} is missing: run npm run build:binary`);
  return file;
}

function releaseFiles(tag: string): void {
  rmSync(RELEASE, { recursive: true, force: true });
  mkdirSync(RELEASE, { recursive: true });
  const sums: string[] = [];
  for (const arch of ARCHS) {
    for (const variant of VARIANTS) {
      const name = `drain-init-${tag}-linux-${arch}-${variant}`;
      copyFileSync(built(arch, variant), join(RELEASE, name));
      sums.push(
        `${createHash('sha256')
          .update(readFileSync(join(RELEASE, name)))
          .digest('hex')}  ${name}`,
      );
      process.stdout.write(`release: dist/release/${name}\n`);
    }
  }
  writeFileSync(join(RELEASE, 'SHA256SUMS'), `${sums.join('\n')}\n`);
  process.stdout.write('release: dist/release/SHA256SUMS\n');
}

/** The image of this machine's architecture (Docker builds the image of the engine's own platform). */
function image(tag: string): void {
  const arch: Arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  const context = mkdtempSync(join(tmpdir(), 'drain-init-image-'));
  try {
    copyFileSync(built(arch, 'standalone'), join(context, 'drain-init'));
    copyFileSync(built(arch, 'glibc'), join(context, 'drain-init-glibc'));
    writeFileSync(
      join(context, 'Dockerfile'),
      [
        `# drain-init ${tag}: the release executables only. In an image's Dockerfile:`,
        `#   COPY --from=drain-init:${tag} /drain-init /usr/local/bin/drain-init`,
        '# /drain-init runs in every image (glibc, musl, none); /drain-init-glibc shares glibc 2.28+ with the image.',
        'FROM scratch',
        'COPY drain-init drain-init-glibc /',
        'ENTRYPOINT ["/drain-init"]',
        '',
      ].join('\n'),
    );
    execFileSync('docker', ['build', '--quiet', '-t', `drain-init:${tag}`, context], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    process.stdout.write(`release: image drain-init:${tag} (linux-${arch})\n`);
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

const what = process.argv[2];
if (what !== undefined && what !== 'image') fail(`unknown argument '${what}': nothing, or image`);
const tag = version();
if (what === undefined) releaseFiles(tag);
image(tag);
