// drain-init's release image (FROM scratch, the executables only) and what the README tells a user to do
// with it: COPY it into an image of any kind, glibc, musl or no libc, run with a read-only root as a
// non-root user; and the docker-compose example as it stands, with no variable of the tests' own.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/version.js';
import { logLines } from '../helpers/pid1.js';
import { connectRedis, freePort } from '../helpers/redis.js';
import { ROOTFS_CACHE, staticWorker } from '../helpers/rootfs.js';
import { pollAsync, waitForSidekiqRegistered } from '../helpers/sidekiq.js';
import {
  WORKER_IMAGE,
  buildWorkerImage,
  docker,
  exec,
  exitCode,
  logs,
  removedAfterEach,
  uniqueName,
  zombies,
  type TestImages,
} from './docker.js';

const BUILD_TIMEOUT_MS = 20 * 60_000;
const ORPHANS = 1000;

let images: TestImages;
beforeAll(async () => {
  images = await buildWorkerImage();
}, BUILD_TIMEOUT_MS);

const removed = removedAfterEach();
const madeImages: string[] = [];
afterAll(async () => {
  for (const image of madeImages.splice(0)) await docker('rmi', '-f', image).catch(() => undefined);
});

/** Builds `FROM base`, drain-init copied from its image as the README says, the static worker beside it. */
async function imageWith(base: string, extra: Record<string, string> = {}, lines: readonly string[] = []) {
  const context = mkdtempSync(join(tmpdir(), 'drain-init-context-'));
  try {
    copyFileSync(staticWorker('x64'), join(context, 'pid1-worker'));
    for (const [name, file] of Object.entries(extra)) copyFileSync(file, join(context, name));
    writeFileSync(
      join(context, 'Dockerfile'),
      [
        `FROM ${base}`,
        `COPY --from=${images.DRAIN_INIT_IMAGE} /drain-init /usr/local/bin/drain-init`,
        'COPY pid1-worker /usr/local/bin/pid1-worker',
        ...lines,
        'ENTRYPOINT ["/usr/local/bin/drain-init", "--"]',
        '',
      ].join('\n'),
    );
    const tag = uniqueName('image');
    await docker('build', '--quiet', '-t', tag, context);
    madeImages.push(tag);
    return tag;
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
}

describe(`drain-init:${VERSION}, the release image`, () => {
  it('holds the two executables only, and runs drain-init as its entry point', async () => {
    expect(await docker('run', '--rm', images.DRAIN_INIT_IMAGE, '--version')).toBe(`drain-init ${VERSION}`);
    const container = removed(await docker('create', images.DRAIN_INIT_IMAGE));
    const files = (await exec('sh', ['-c', `docker export ${container} | tar -t`])).stdout.trim().split('\n');
    // Docker adds the mount points and files of a container's runtime to every export.
    const runtime = /^(\.dockerenv|(dev|proc|sys|etc)\/.*)$/;
    expect(files.filter((file) => !runtime.test(file)).sort()).toEqual(['drain-init', 'drain-init-glibc']);
  });
});

describe('COPY --from the release image into an image of any kind, read-only root, as nobody', () => {
  const glibcOnly = {
    'libc.so.6': `${ROOTFS_CACHE}/bookworm/lib/x86_64-linux-gnu/libc.so.6`,
    'ld-linux-x86-64.so.2': `${ROOTFS_CACHE}/bookworm/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2`,
  };
  const kinds = {
    'musl, no glibc (as Alpine)': () => imageWith(images.MUSL_IMAGE),
    'nothing but drain-init and the worker (as scratch, distroless/static)': () => imageWith('scratch'),
    'glibc without libstdc++ (as distroless/base)': () =>
      imageWith('scratch', glibcOnly, [
        'COPY libc.so.6 ld-linux-x86-64.so.2 /lib/x86_64-linux-gnu/',
        'COPY ld-linux-x86-64.so.2 /lib64/',
      ]),
  };

  it.each(Object.keys(kinds))(`%s: ${ORPHANS} orphans reaped, the addon loaded from memory`, async (kind) => {
    const image = await kinds[kind as keyof typeof kinds]();
    const container = removed(uniqueName('any-image'));
    await docker(
      'run',
      '-d',
      '--network',
      'host',
      '--read-only',
      '--user',
      '65534:65534',
      '--name',
      container,
      '-e',
      `DRAIN_INIT_PROBE_PORT=${await freePort()}`,
      '-e',
      'DRAIN_INIT_LOG_LEVEL=debug',
      image,
      '/usr/local/bin/pid1-worker',
      'orphans',
      String(ORPHANS),
      '60',
    );
    await pollAsync(
      async () => ((await logs(container)).includes(`orphaned ${ORPHANS}`) ? true : undefined),
      'the orphans',
      60_000,
    );
    await pollAsync(async () => ((await zombies(container)) === 0 ? true : undefined), 'no zombie left', 5_000);
    // The SIGCHLD handler reaps them as they exit; drain-init counts them in its log at its next sweep (1 s).
    const reapedInLog = async () =>
      logLines(await logs(container))
        .filter((line) => line.msg === 'reaped zombies')
        .reduce((sum, line) => sum + Number(line.reaped), 0);
    await pollAsync(async () => ((await reapedInLog()) >= ORPHANS ? true : undefined), 'the reaped count', 5_000);
    expect(await reapedInLog()).toBe(ORPHANS);
    const log = logLines(await logs(container));
    expect(log.find((line) => line.msg === 'native addon loaded')?.path).toMatch(/^\/proc\/self\/fd\/\d+$/);
  });
});

describe('examples/docker-compose/compose.yaml as it stands', () => {
  it('starts Redis and the worker of Dockerfile.example; docker-compose stop ends the worker with status 0', async () => {
    const project = uniqueName('compose-example');
    const redisPort = await freePort();
    // Only the example's own variables: the images (no registry here) and a free port for Redis.
    const env = { WORKER_IMAGE, REDIS_IMAGE: images.BASE_IMAGE, REDIS_PORT: String(redisPort), GRACE_PERIOD: '20s' };
    const compose = async (...args: string[]): Promise<string> =>
      (
        await exec('docker-compose', ['-p', project, '-f', 'examples/docker-compose/compose.yaml', ...args], env)
      ).stdout.trim();
    try {
      await compose('up', '-d');
      const worker = await compose('ps', '-q', 'worker');
      await waitForSidekiqRegistered(connectRedis(redisPort), { timeoutMs: 45_000 }).catch(async (error: unknown) => {
        throw new Error(`${(error as Error).message}; the worker's output: ${await logs(worker)}`);
      });
      await compose('stop');
      expect(await exitCode(worker), await logs(worker)).toBe(0);
    } finally {
      await compose('down', '-t', '0');
    }
  }, 120_000);
});
