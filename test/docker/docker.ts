// Helpers for the tests that run drain-init's image (Dockerfile.example) in real containers, on the
// host's network (dockerd runs with --bridge=none: nothing leaves loopback).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterEach } from 'vitest';
import { ROOT } from '../helpers/pid1.js';
import { VERSION } from '../../src/version.js';
import { freePort } from '../helpers/redis.js';
import { zombiesUnder } from '../helpers/rootfs.js';

export const WORKER_IMAGE = 'drain-init-test-worker:latest';
export const COMPOSE_FILES = [`${ROOT}examples/docker-compose/compose.yaml`, `${ROOT}test/docker/compose.test.yaml`];

export interface Output {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end; rejects with its stderr when it fails. */
export function exec(
  command: string,
  args: readonly string[],
  env: Record<string, string> = {},
  timeoutMs = 600_000,
): Promise<Output> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd: ROOT, env: { ...process.env, ...env }, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error === null) resolve({ stdout, stderr });
        else reject(new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || error.message}`));
      },
    );
  });
}

export async function docker(...args: string[]): Promise<string> {
  return (await exec('docker', args)).stdout.trim();
}

/** Fails with one clear line when no Docker engine answers. */
export async function requireDocker(): Promise<void> {
  try {
    await exec('docker', ['info', '--format', '{{.ServerVersion}}'], {}, 20_000);
  } catch (error) {
    const why = (error as Error).message.split('\n').find((line) => line.trim() !== '') ?? '';
    throw new Error(
      `Docker cannot run here (${why}): bash scripts/docker/setup.sh installs docker.io and starts dockerd, as root`,
    );
  }
}

export interface TestImages {
  /** Debian bookworm with Sidekiq (scripts/docker/images.sh). */
  readonly BASE_IMAGE: string;
  /** musl and busybox only, no glibc (scripts/docker/images.sh). */
  readonly MUSL_IMAGE: string;
  /** drain-init's release image, FROM scratch (scripts/build/release.ts), from this machine's executables. */
  readonly DRAIN_INIT_IMAGE: string;
}

/** The local images (base images made once by scripts/docker/images.sh; drain-init's image made anew). */
export async function testImages(): Promise<TestImages> {
  await requireDocker();
  const { stdout } = await exec('bash', ['scripts/docker/images.sh']);
  const made = Object.fromEntries(
    stdout
      .trim()
      .split('\n')
      .map((line) => line.split('=', 2) as [string, string]),
  );
  await exec(process.execPath, ['scripts/build/release.ts', 'image']);
  return {
    BASE_IMAGE: made.BASE_IMAGE ?? '',
    MUSL_IMAGE: made.MUSL_IMAGE ?? '',
    DRAIN_INIT_IMAGE: `drain-init:${VERSION}`,
  };
}

/**
 * The worker image: Dockerfile.example as a user builds it, with the sample app as the build context and
 * drain-init from its release image; resolves to the images it was built from.
 */
export async function buildWorkerImage(): Promise<TestImages> {
  const images = await testImages();
  await exec('docker', [
    'build',
    '--quiet',
    '--network',
    'host',
    '-f',
    'Dockerfile.example',
    '--build-arg',
    `BASE_IMAGE=${images.BASE_IMAGE}`,
    '--build-arg',
    `DRAIN_INIT_IMAGE=${images.DRAIN_INIT_IMAGE}`,
    '-t',
    WORKER_IMAGE,
    'test/fixtures/sidekiq-app',
  ]);
  return images;
}

/** Names unique to this run, so parallel runs and leftovers never collide. */
export function uniqueName(what: string): string {
  return `drain-init-test-${what}-${randomBytes(4).toString('hex')}`;
}

/** Registers an afterEach that removes every container the returned function was given. */
export function removedAfterEach(): (container: string) => string {
  const containers: string[] = [];
  afterEach(async () => {
    await Promise.all(
      containers.splice(0).map((container) => exec('docker', ['rm', '-f', container]).catch(() => undefined)),
    );
  });
  return (container) => {
    containers.push(container);
    return container;
  };
}

/**
 * `docker run -d` on the host network, drain-init's probe on a free port (7433 may be taken by another
 * drain-init on this host); resolves to the container's name.
 */
export async function runDetached(
  name: string,
  options: readonly string[],
  command: readonly string[],
): Promise<string> {
  const probePort = await freePort();
  await docker(
    'run',
    '-d',
    '--network',
    'host',
    '--name',
    name,
    '-e',
    `DRAIN_INIT_PROBE_PORT=${probePort}`,
    ...options,
    WORKER_IMAGE,
    ...command,
  );
  return name;
}

/** The container's exit code once it has stopped. */
export async function exitCode(container: string): Promise<number> {
  return Number(await docker('inspect', '-f', '{{.State.ExitCode}}', container));
}

/** stdout and stderr of the container, as `docker logs` shows them. */
export async function logs(container: string): Promise<string> {
  const { stdout, stderr } = await exec('docker', ['logs', container]);
  return stdout + stderr;
}

/**
 * How many of the container's processes are zombies (state Z), from the host's /proc: the descendants of
 * the container's init. (docker top cannot tell: an exited process has left its cgroup.)
 */
export async function zombies(container: string): Promise<number> {
  return zombiesUnder(Number(await docker('inspect', '-f', '{{.State.Pid}}', container)));
}

/** `docker stop -t <grace>`: resolves to how long Docker took, in ms. */
export async function stopTimed(container: string, graceSeconds: number): Promise<number> {
  const start = performance.now();
  await docker('stop', '-t', String(graceSeconds), container);
  return performance.now() - start;
}
