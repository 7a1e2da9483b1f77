// The platform's grace period read from stand-ins of the Kubernetes API (HTTPS with a CA made here by
// openssl, a service account token file) and of the ECS task metadata endpoint, on loopback: the answers,
// the refusals, the garbage and the silence, each one warning at most and a fallback; then drain-init as
// PID 1 reading them while its worker starts.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/lib/clock.js';
import { detectGracePeriod, type PlatformHost } from '../../src/platform/grace.js';
import { FakeClock, flushPromises } from '../helpers/fake.js';
import { childOf, CLI, killedAfterEach, logLines, startDrainInit, waitFor, type Run } from '../helpers/pid1.js';

const TOKEN = 'test-token-0123456789';
const NAMESPACE = 'jobs';
const POD = 'worker-7f9c';
let dir = '';
let serviceAccountDir = '';
let tls = { key: '', cert: '', ca: '' };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'drain-init-platform-'));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  openssl(
    ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=test CA'],
    ...['-keyout', file('ca.key'), '-out', file('ca.crt')],
  );
  openssl(
    ...['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=kubernetes'],
    ...['-keyout', file('server.key'), '-out', file('server.csr')],
  );
  writeFileSync(file('san.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:kubernetes.default.svc\n');
  openssl(
    ...['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key')],
    ...['-CAcreateserial', '-days', '2', '-extfile', file('san.cnf'), '-out', file('server.crt')],
  );
  tls = {
    key: readFileSync(file('server.key'), 'utf8'),
    cert: readFileSync(file('server.crt'), 'utf8'),
    ca: readFileSync(file('ca.crt'), 'utf8'),
  };
  serviceAccountDir = join(dir, 'serviceaccount');
  mkdirSync(serviceAccountDir);
  writeFileSync(join(serviceAccountDir, 'token'), `${TOKEN}\n`);
  writeFileSync(join(serviceAccountDir, 'ca.crt'), tls.ca);
  writeFileSync(join(serviceAccountDir, 'namespace'), NAMESPACE);
});

type Handler = (request: IncomingMessage, response: ServerResponse) => void;
const servers: Server[] = [];
afterAll(() => {
  for (const server of servers) server.close();
});

async function listen(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** A stand-in of the Kubernetes API; it records the requests it got. */
async function kubernetesApi(handler: Handler): Promise<{ port: number; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  const server = createHttpsServer({ key: tls.key, cert: tls.cert }, (request, response) => {
    requests.push(request);
    handler(request, response);
  });
  return { port: await listen(server), requests };
}

function json(status: number, body: unknown): Handler {
  return (_request, response) => {
    response.writeHead(status, { 'Content-Type': 'application/json' });
    response.end(typeof body === 'string' ? body : JSON.stringify(body));
  };
}

/** A pod as the API gives it, and its grace period checked against the token it was asked with. */
function pod(spec: Record<string, unknown>, metadata: Record<string, unknown> = {}): Handler {
  return (request, response) => {
    const path = `/api/v1/namespaces/${NAMESPACE}/pods/${POD}`;
    if (request.headers.authorization !== `Bearer ${TOKEN}`) return json(401, { kind: 'Status' })(request, response);
    if (request.url !== path)
      return json(404, { kind: 'Status', message: `pods not found: ${request.url}` })(request, response);
    json(200, { kind: 'Pod', apiVersion: 'v1', metadata: { name: POD, namespace: NAMESPACE, ...metadata }, spec })(
      request,
      response,
    );
  };
}

const FORBIDDEN = {
  kind: 'Status',
  status: 'Failure',
  message: `pods "${POD}" is forbidden: User "system:serviceaccount:jobs:default" cannot get resource "pods" in API group "" in the namespace "jobs"`,
  reason: 'Forbidden',
  code: 403,
};

function kubernetesHost(port: number, env: Record<string, string> = {}): PlatformHost {
  return {
    env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(port), POD_NAME: POD, ...env },
    hostname: 'not-the-pod',
    exists: () => false,
    serviceAccountDir,
  };
}

describe('Kubernetes: the pod read from the API', () => {
  it("takes the pod's terminationGracePeriodSeconds, asked with the service account's token over the CA's TLS", async () => {
    const api = await kubernetesApi(pod({ terminationGracePeriodSeconds: 600 }));
    const detection = detectGracePeriod(kubernetesHost(api.port), systemClock);
    expect(detection.platform).toBe('kubernetes');
    expect(detection.now).toEqual({ ms: 30_000, source: "Kubernetes' default" });
    expect(await detection.read?.()).toEqual({
      ms: 600_000,
      source: `Kubernetes: spec.terminationGracePeriodSeconds of pod ${NAMESPACE}/${POD}`,
    });
    expect(api.requests).toHaveLength(1);
  });

  it('takes the deletion grace period of a pod being deleted, and the default of a pod that sets none', async () => {
    const deleting = await kubernetesApi(
      pod({ terminationGracePeriodSeconds: 600 }, { deletionGracePeriodSeconds: 45, deletionTimestamp: 'now' }),
    );
    expect(await detectGracePeriod(kubernetesHost(deleting.port), systemClock).read?.()).toMatchObject({ ms: 45_000 });
    const unset = await kubernetesApi(pod({}));
    expect(await detectGracePeriod(kubernetesHost(unset.port), systemClock).read?.()).toEqual({
      ms: 30_000,
      source: `Kubernetes' default (pod ${NAMESPACE}/${POD} does not set it)`,
    });
  });

  it('names the pod by the hostname and the namespace by POD_NAMESPACE when told', async () => {
    const api = await kubernetesApi(json(200, { kind: 'Pod', spec: { terminationGracePeriodSeconds: 90 } }));
    const host = { ...kubernetesHost(api.port, { POD_NAMESPACE: 'other' }), hostname: 'pod-from-hostname' };
    delete (host.env as Record<string, string | undefined>).POD_NAME;
    expect(await detectGracePeriod(host, systemClock).read?.()).toMatchObject({ ms: 90_000 });
    expect(api.requests[0]?.url).toBe('/api/v1/namespaces/other/pods/pod-from-hostname');
  });

  it.each([
    [
      'RBAC refuses (403)',
      json(403, FORBIDDEN),
      /^GET \/api\/v1\/namespaces\/jobs\/pods\/worker-7f9c: HTTP 403 pods "worker-7f9c" is forbidden/,
    ],
    ['the answer is not JSON', json(200, '<html>proxy error</html>'), /: the answer is not JSON$/],
    ['the answer is not a pod', json(200, { kind: 'Status' }), /^the API answered with something that is not a Pod$/],
    ['a server error', json(500, 'oops'), /: HTTP 500 oops$/],
  ])('falls back to 30 s with one warning when %s', async (_, handler, warning) => {
    const api = await kubernetesApi(handler);
    const said = await detectGracePeriod(kubernetesHost(api.port), systemClock).read?.();
    expect(said).toMatchObject({ ms: 30_000, source: "Kubernetes' default", warning: expect.stringMatching(warning) });
  });

  it('falls back when the API refuses the connection, or its certificate is not signed by the CA', async () => {
    const closed = await listen(createHttpServer());
    servers.pop()?.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const refused = await detectGracePeriod(kubernetesHost(closed), systemClock).read?.();
    expect(refused).toMatchObject({ ms: 30_000, warning: expect.stringMatching(/ECONNREFUSED/) });

    const api = await kubernetesApi(pod({ terminationGracePeriodSeconds: 600 }));
    const otherCa = join(dir, 'other-ca');
    mkdirSync(otherCa, { recursive: true });
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=other'],
        ...['-keyout', join(otherCa, 'key'), '-out', join(otherCa, 'ca.crt')],
      ],
      { stdio: 'ignore' },
    );
    writeFileSync(join(otherCa, 'token'), TOKEN);
    writeFileSync(join(otherCa, 'namespace'), NAMESPACE);
    const untrusted = await detectGracePeriod(
      { ...kubernetesHost(api.port), serviceAccountDir: otherCa },
      systemClock,
    ).read?.();
    expect(untrusted).toMatchObject({ ms: 30_000, warning: expect.stringMatching(/certificate/) });
    expect(api.requests).toHaveLength(0);
  });

  it('gives up after 1.5 s on an API that never answers', async () => {
    const api = await kubernetesApi(() => {});
    const clock = new FakeClock();
    const detection = detectGracePeriod(kubernetesHost(api.port), clock);
    let said: unknown;
    void detection.read?.().then((value) => (said = value));
    await waitFor(() => api.requests.length > 0 || undefined, 'the request');
    await clock.advanceAsync(1_499);
    expect(said).toBeUndefined();
    await clock.advanceAsync(1);
    await flushPromises();
    expect(said).toMatchObject({ ms: 30_000, warning: expect.stringMatching(/no answer within 1500 ms$/) });
  });

  it('asks nothing without a service account token', async () => {
    const api = await kubernetesApi(pod({ terminationGracePeriodSeconds: 600 }));
    const said = await detectGracePeriod(
      { ...kubernetesHost(api.port), serviceAccountDir: join(dir, 'none') },
      systemClock,
    ).read?.();
    expect(said).toMatchObject({ ms: 30_000, warning: expect.stringMatching(/^no service account token and CA in /) });
    expect(api.requests).toHaveLength(0);
  });
});

/** A stand-in of the ECS task metadata endpoint (v4): the container's own metadata at its URI. */
async function ecsMetadata(handler: Handler): Promise<string> {
  const port = await listen(createHttpServer(handler));
  return `http://127.0.0.1:${port}/v4/0123456789abcdef-1234567890`;
}

const CONTAINER = {
  DockerId: '0123456789abcdef-1234567890',
  Name: 'worker',
  DockerName: 'worker',
  Image: 'my-worker:1.0',
  Labels: { 'com.amazonaws.ecs.container-name': 'worker' },
  DesiredStatus: 'RUNNING',
  KnownStatus: 'RUNNING',
  Limits: { CPU: 2, Memory: 1024 },
  Type: 'NORMAL',
};

function ecsHost(uri: string): PlatformHost {
  // On EC2 the container is a Docker one too: ECS is still what is recognised.
  return {
    env: { ECS_CONTAINER_METADATA_URI_V4: uri },
    hostname: 'ip-10-0-0-1',
    exists: () => true,
    serviceAccountDir,
  };
}

describe('ECS: the task metadata endpoint', () => {
  it("takes the container's StopTimeout when the metadata gives it", async () => {
    const detection = detectGracePeriod(
      ecsHost(await ecsMetadata(json(200, { ...CONTAINER, StopTimeout: 120 }))),
      systemClock,
    );
    expect(detection).toMatchObject({ platform: 'ecs', now: { ms: 30_000, source: "ECS's default stopTimeout" } });
    expect(await detection.read?.()).toEqual({
      ms: 120_000,
      source: "ECS: the container's StopTimeout in the task metadata",
    });
  });

  it("says it is ECS's default when the metadata does not give it, as AWS documents the response", async () => {
    const said = await detectGracePeriod(ecsHost(await ecsMetadata(json(200, CONTAINER))), systemClock).read?.();
    expect(said).toEqual({
      ms: 30_000,
      source: "ECS's default stopTimeout (the task metadata does not give the container's)",
    });
  });

  it.each([
    ['a server error', json(500, 'internal'), /: HTTP 500 internal$/],
    ['garbage', json(200, '{"Name": "wor'), /: the answer is not JSON$/],
    ['not a container', json(200, []), /^the task metadata endpoint answered with something that is not a container$/],
  ])('falls back to 30 s with one warning on %s', async (_, handler, warning) => {
    const said = await detectGracePeriod(ecsHost(await ecsMetadata(handler)), systemClock).read?.();
    expect(said).toMatchObject({ ms: 30_000, warning: expect.stringMatching(warning) });
  });

  it('gives up after 1.5 s on an endpoint that never answers', async () => {
    const clock = new FakeClock();
    let asked = false;
    const detection = detectGracePeriod(ecsHost(await ecsMetadata(() => (asked = true))), clock);
    let said: unknown;
    void detection.read?.().then((value) => (said = value));
    await waitFor(() => asked || undefined, 'the request');
    await clock.advanceAsync(1_500);
    await flushPromises();
    expect(said).toMatchObject({ ms: 30_000, warning: expect.stringMatching(/no answer within 1500 ms$/) });
  });
});

describe('Docker and the rest', () => {
  it('is Docker where /.dockerenv or /run/.containerenv exists: 10 s at once, nothing to ask', () => {
    for (const marker of ['/.dockerenv', '/run/.containerenv']) {
      const detection = detectGracePeriod(
        { env: {}, hostname: 'abc', exists: (path) => path === marker, serviceAccountDir },
        systemClock,
      );
      expect(detection).toEqual({
        platform: 'docker',
        now: { ms: 10_000, source: 'Docker: the default of docker stop and compose' },
        read: undefined,
      });
    }
    expect(
      detectGracePeriod({ env: {}, hostname: 'abc', exists: () => false, serviceAccountDir }, systemClock),
    ).toEqual({
      platform: 'unknown',
      now: { ms: 30_000, source: 'no platform recognised: the default' },
      read: undefined,
    });
  });
});

describe('drain-init as PID 1 on a platform', () => {
  const track = killedAfterEach();

  function stopSettingsLines(run: Run): Record<string, unknown>[] {
    return logLines(run.stderr()).filter((line) => line.gracePeriodSource !== undefined);
  }

  it('starts the worker at once, then plans with the grace period the ECS metadata gives, a second later', async () => {
    // The metadata answers 0.7 s after it is asked (drain-init waits 1.5 s at most): the worker must not wait.
    const uri = await ecsMetadata((request, response) => {
      setTimeout(() => json(200, { ...CONTAINER, StopTimeout: 45 })(request, response), 700);
    });
    const run = track(
      startDrainInit(['--preset', 'sidekiq', '--', 'sleep', '60'], { env: { ECS_CONTAINER_METADATA_URI_V4: uri } }),
    );
    await waitFor(() => stopSettingsLines(run).length > 1 || undefined, 'the new stop settings');
    const lines = logLines(run.stderr());
    const started = lines.findIndex((line) => line.msg === 'started child');
    expect(started).toBeGreaterThan(lines.indexOf(stopSettingsLines(run)[0] as Record<string, unknown>));
    expect(started).toBeLessThan(lines.findIndex((line) => line.gracePeriod === '45s'));
    expect(stopSettingsLines(run)[0]).toEqual(
      expect.objectContaining({
        msg: 'stop settings',
        gracePeriod: '30s',
        gracePeriodSource: "ECS's default stopTimeout",
        gracePeriodSetBy: '--grace-period, DRAIN_INIT_GRACE_PERIOD',
      }),
    );
    // 30 s holds Sidekiq's 25 s and the 5 s margin exactly: no warning.
    expect(lines.filter((line) => line.level === 40)).toEqual([]);
    expect(stopSettingsLines(run)[1]).toMatchObject({
      msg: "the platform's grace period: stop settings now",
      gracePeriod: '45s',
      gracePeriodSource: "ECS: the container's StopTimeout in the task metadata",
      plan: 'TSTP now, TERM at +15.0 s, KILL at +43.0 s, deadline at +45.0 s',
    });
    process.kill(await run.pid(), 'SIGTERM');
    await waitFor(() => run.stderr().includes('"stop requested') || undefined, 'the stop');
    expect(logLines(run.stderr()).find((line) => String(line.msg).startsWith('stop requested'))?.msg).toBe(
      'stop requested: TSTP now, TERM at +15.0 s, KILL at +43.0 s, deadline at +45.0 s',
    );
  });

  it('reads the pod through the API with the service account mounted where Kubernetes mounts it', async () => {
    const api = await kubernetesApi(pod({ terminationGracePeriodSeconds: 20 }));
    // A private mount namespace with a tmpfs on /run: the service account at its real path, for drain-init alone.
    const mount = [
      'mount -t tmpfs tmpfs /run',
      'mkdir -p /run/secrets/kubernetes.io/serviceaccount',
      `cp ${serviceAccountDir}/* /run/secrets/kubernetes.io/serviceaccount/`,
      `exec "${process.execPath}" "${CLI}" --preset sidekiq -- sleep 60`,
    ].join(' && ');
    const child = spawn('unshare', ['--mount', '--pid', '--fork', '--mount-proc', 'sh', '-c', mount], {
      env: {
        ...process.env,
        KUBERNETES_SERVICE_HOST: '127.0.0.1',
        KUBERNETES_SERVICE_PORT: String(api.port),
        POD_NAME: POD,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    try {
      await waitFor(
        () => (stderr.match(/grace period/g) ?? []).length >= 2 || undefined,
        'the grace period from the API',
      );
      const lines = logLines(stderr).filter((line) => line.gracePeriodSource !== undefined);
      expect(lines.map((line) => line.gracePeriodSource)).toEqual([
        "Kubernetes' default",
        `Kubernetes: spec.terminationGracePeriodSeconds of pod ${NAMESPACE}/${POD}`,
      ]);
      expect(lines[1]?.gracePeriod).toBe('20s');
      // 20 s cannot hold Sidekiq's 25 s: said now, with the fix.
      expect(
        logLines(stderr)
          .filter((line) => line.level === 40)
          .map((line) => line.msg),
      ).toContain(
        'the stop plan does not fit: shutdown timeout 25s + stop margin 5s do not fit in the grace period 20s: SIGTERM at once; give the platform a grace period of at least 30s (terminationGracePeriodSeconds, ECS stopTimeout, compose stop_grace_period, docker stop -t), or a shorter shutdown timeout',
      );
      expect(api.requests[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    } finally {
      // The namespace's init: the kernel kills the rest of it with it.
      const init = child.pid === undefined ? undefined : childOf(child.pid);
      if (init !== undefined) process.kill(init, 'SIGKILL');
      child.kill('SIGKILL');
    }
  });
});
