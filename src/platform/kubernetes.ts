// The pod's own grace period, read from the Kubernetes API with the pod's service account: GET of
// /api/v1/namespaces/<namespace>/pods/<name>, which RBAC must allow (a Role with `get` on `pods`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../lib/clock.js';
import { getJson } from './http.js';

/** Where Kubernetes mounts the pod's service account: token, ca.crt, namespace. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface PodAddress {
  readonly apiHost: string;
  readonly apiPort: string;
  readonly namespace: string;
  readonly name: string;
  readonly token: string;
  readonly ca: string;
}

/**
 * Where the pod is in the API, from the env the kubelet sets (KUBERNETES_SERVICE_HOST/PORT), the pod's
 * name (POD_NAME from the downward API, else the hostname, which is the pod's name unless spec.hostname
 * says otherwise) and the mounted service account; a reason when something is missing.
 */
export function podAddress(
  env: Readonly<Record<string, string | undefined>>,
  hostname: string,
  serviceAccountDir: string,
): PodAddress | { reason: string } {
  const apiHost = env.KUBERNETES_SERVICE_HOST ?? '';
  const read = (file: string): string | undefined => {
    try {
      return readFileSync(join(serviceAccountDir, file), 'utf8').trim();
    } catch {
      return undefined;
    }
  };
  const token = read('token');
  const ca = read('ca.crt');
  if (token === undefined || ca === undefined)
    return { reason: `no service account token and CA in ${serviceAccountDir} (automountServiceAccountToken: false?)` };
  const namespace = env.POD_NAMESPACE ?? read('namespace');
  if (namespace === undefined || namespace === '') return { reason: 'the namespace is unknown: set POD_NAMESPACE' };
  return {
    apiHost,
    apiPort: env.KUBERNETES_SERVICE_PORT ?? '443',
    namespace,
    name: env.POD_NAME ?? hostname,
    token,
    ca,
  };
}

/**
 * The grace period of a pod document: metadata.deletionGracePeriodSeconds once the pod is being deleted
 * (kubectl delete --grace-period, an eviction), else spec.terminationGracePeriodSeconds, else Kubernetes'
 * default (absent). Seconds; a reason when the document is not a pod.
 */
export function podGracePeriodS(pod: unknown): { seconds: number | undefined; field: string } | { reason: string } {
  if (typeof pod !== 'object' || pod === null || (pod as { kind?: unknown }).kind !== 'Pod')
    return { reason: 'the API answered with something that is not a Pod' };
  const { metadata, spec } = pod as { metadata?: Record<string, unknown>; spec?: Record<string, unknown> };
  const deletion = metadata?.deletionGracePeriodSeconds;
  if (typeof deletion === 'number' && deletion >= 0)
    return { seconds: deletion, field: 'metadata.deletionGracePeriodSeconds' };
  const termination = spec?.terminationGracePeriodSeconds;
  if (typeof termination === 'number' && termination >= 0)
    return { seconds: termination, field: 'spec.terminationGracePeriodSeconds' };
  return { seconds: undefined, field: 'spec.terminationGracePeriodSeconds' };
}

/** Reads the pod; a reason for a warning when it cannot be read. */
export async function readPodGracePeriodS(
  address: PodAddress,
  timeoutMs: number,
  clock: Clock,
): Promise<{ seconds: number | undefined; field: string } | { reason: string }> {
  const host = address.apiHost.includes(':') ? `[${address.apiHost}]` : address.apiHost;
  const path = `/api/v1/namespaces/${encodeURIComponent(address.namespace)}/pods/${encodeURIComponent(address.name)}`;
  const answer = await getJson(
    {
      url: new URL(`https://${host}:${address.apiPort}${path}`),
      headers: { Authorization: `Bearer ${address.token}` },
      ca: address.ca,
      timeoutMs,
    },
    clock,
  );
  if (!answer.ok) return { reason: `GET ${path}: ${answer.reason}` };
  return podGracePeriodS(answer.body);
}
