// The platform's grace period (its time between SIGTERM and SIGKILL) when --grace-period does not say it:
// which platform this is comes from the environment and the file system at once; what its API says is
// asked once the worker has started, within a bounded time.
import { existsSync } from 'node:fs';
import type { Clock } from '../lib/clock.js';
import { readContainerStopTimeoutS } from './ecs.js';
import { podAddress, readPodGracePeriodS, SERVICE_ACCOUNT_DIR } from './kubernetes.js';

/** Kubernetes' terminationGracePeriodSeconds and ECS's stopTimeout when not set; `docker stop` and compose wait 10 s. */
export const KUBERNETES_DEFAULT_MS = 30_000;
export const ECS_DEFAULT_MS = 30_000;
export const DOCKER_DEFAULT_MS = 10_000;
export const FALLBACK_MS = 30_000;
/** No platform API is waited for longer than this. */
export const PLATFORM_API_TIMEOUT_MS = 1_500;

export type Platform = 'kubernetes' | 'ecs' | 'docker' | 'unknown';

/** A grace period and where it came from, for the log. */
export interface GracePeriod {
  readonly ms: number;
  readonly source: string;
}

/** What the platform is known to give now, and, when its API may say more, how to ask it. */
export interface GraceDetection {
  readonly platform: Platform;
  readonly now: GracePeriod;
  /** Asks the API; resolves within PLATFORM_API_TIMEOUT_MS and never rejects; a `warning` when it could not tell. */
  readonly read: (() => Promise<GracePeriod & { readonly warning?: string }>) | undefined;
}

export interface PlatformHost {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly hostname: string;
  readonly exists: (path: string) => boolean;
  readonly serviceAccountDir: string;
}

export function systemHost(env: Readonly<Record<string, string | undefined>>, hostname: string): PlatformHost {
  return { env, hostname, exists: existsSync, serviceAccountDir: SERVICE_ACCOUNT_DIR };
}

/**
 * Kubernetes first (its nodes may run Docker too), then ECS (on EC2 it is Docker underneath), then Docker
 * or Podman (/.dockerenv, /run/.containerenv); anything else is unknown.
 */
export function whichPlatform(host: Pick<PlatformHost, 'env' | 'exists'>): Platform {
  if ((host.env.KUBERNETES_SERVICE_HOST ?? '') !== '') return 'kubernetes';
  if ((host.env.ECS_CONTAINER_METADATA_URI_V4 ?? '') !== '') return 'ecs';
  if (host.exists('/.dockerenv') || host.exists('/run/.containerenv')) return 'docker';
  return 'unknown';
}

export function detectGracePeriod(host: PlatformHost, clock: Clock): GraceDetection {
  const platform = whichPlatform(host);
  switch (platform) {
    case 'kubernetes':
      return {
        platform,
        now: { ms: KUBERNETES_DEFAULT_MS, source: "Kubernetes' default" },
        read: () => fromPod(host, clock),
      };
    case 'ecs':
      return {
        platform,
        now: { ms: ECS_DEFAULT_MS, source: "ECS's default stopTimeout" },
        read: () => fromEcs(host.env.ECS_CONTAINER_METADATA_URI_V4 ?? '', clock),
      };
    case 'docker':
      return {
        platform,
        now: { ms: DOCKER_DEFAULT_MS, source: 'Docker: the default of docker stop and compose' },
        read: undefined,
      };
    case 'unknown':
      return { platform, now: { ms: FALLBACK_MS, source: 'no platform recognised: the default' }, read: undefined };
  }
}

async function fromPod(host: PlatformHost, clock: Clock): Promise<GracePeriod & { warning?: string }> {
  const fallback = { ms: KUBERNETES_DEFAULT_MS, source: "Kubernetes' default" };
  const address = podAddress(host.env, host.hostname, host.serviceAccountDir);
  if ('reason' in address) return { ...fallback, warning: address.reason };
  const read = await readPodGracePeriodS(address, PLATFORM_API_TIMEOUT_MS, clock);
  if ('reason' in read) return { ...fallback, warning: read.reason };
  const pod = `pod ${address.namespace}/${address.name}`;
  if (read.seconds === undefined) return { ...fallback, source: `Kubernetes' default (${pod} does not set it)` };
  return { ms: read.seconds * 1000, source: `Kubernetes: ${read.field} of ${pod}` };
}

async function fromEcs(metadataUri: string, clock: Clock): Promise<GracePeriod & { warning?: string }> {
  const fallback = { ms: ECS_DEFAULT_MS, source: "ECS's default stopTimeout" };
  const read = await readContainerStopTimeoutS(metadataUri, PLATFORM_API_TIMEOUT_MS, clock);
  if ('reason' in read) return { ...fallback, warning: read.reason };
  if (read.seconds === undefined)
    return { ...fallback, source: "ECS's default stopTimeout (the task metadata does not give the container's)" };
  return { ms: read.seconds * 1000, source: "ECS: the container's StopTimeout in the task metadata" };
}
