// The platform examples the README shows (examples/): Kubernetes manifests checked against the
// Kubernetes API schemas (kubernetes-models), and in each example drain-init's own options parsed by
// drain-init and matched to the platform's grace period.
import { readdirSync, readFileSync } from 'node:fs';
import { Deployment } from 'kubernetes-models/apps/v1';
import type { IContainer } from 'kubernetes-models/v1';
import { ServiceAccount } from 'kubernetes-models/v1';
import { Role, RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { describe, expect, it } from 'vitest';
import { OPTIONS, envName } from '../../src/config/options.js';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseConfig, type Config } from '../../src/config/parse.js';

const EXAMPLES = new URL('../../examples/', import.meta.url);
const DRAIN_INIT = '/usr/local/bin/drain-init';

/** drain-init's configuration from an argv that starts with the binary, as the platform runs it. */
function drainInitConfig(argv: readonly string[]): Config {
  expect(argv[0]).toBe(DRAIN_INIT);
  const parsed = parseConfig(argv.slice(1), {});
  if (parsed.kind !== 'run') throw new Error(`expected a run, got ${parsed.kind}`);
  return parsed.config;
}

function read(path: string): string {
  return readFileSync(new URL(path, EXAMPLES), 'utf8');
}

const manifests = readdirSync(new URL('kubernetes/', EXAMPLES)).filter((name) => name.endsWith('.yaml'));

describe.each(manifests)('Kubernetes: %s', (name) => {
  const documents = parseAllDocuments(read(`kubernetes/${name}`)).map(
    (document) => document.toJS() as Record<string, unknown>,
  );

  it('is a valid apps/v1 Deployment', () => {
    expect(documents.map((document) => `${String(document.apiVersion)} ${String(document.kind)}`)).toEqual([
      'apps/v1 Deployment',
    ]);
    expect(() => new Deployment(documents[0]).validate()).not.toThrow();
  });

  it('runs drain-init with the pod grace period, probes on its probe port, POD_NAME, a memory limit, no preStop hook', () => {
    const pod = new Deployment(documents[0]).spec?.template.spec;
    const worker = pod?.containers.find((container: IContainer) => container.command?.[0] === DRAIN_INIT);
    if (pod === undefined || worker === undefined) throw new Error('no container runs drain-init');
    const config = drainInitConfig([...(worker.command ?? []), ...(worker.args ?? [])]);
    expect(config.gracePeriodMs).toBe((pod.terminationGracePeriodSeconds ?? 30) * 1000);
    expect(config.command).toBe('bundle');
    const probePort = worker.ports?.find((port) => port.containerPort === config.probePort)?.name;
    expect(worker.livenessProbe?.httpGet).toEqual({ path: '/livez', port: probePort });
    // In a pod shared with a web server the worker has no readiness probe (see the file's comment).
    if (pod.containers.length === 1)
      expect(worker.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: probePort });
    else expect(worker.readinessProbe).toBeUndefined();
    expect(worker.env?.find((variable) => variable.name === 'POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe(
      'metadata.name',
    );
    expect(worker.resources?.limits?.memory).toBeDefined();
    expect(pod.containers.every((container: IContainer) => container.lifecycle?.preStop === undefined)).toBe(true);
  });
});

describe('Kubernetes: kubernetes-rbac/read-own-pod.yaml', () => {
  it("binds a service account to a Role that can get pods, drain-init's one request", () => {
    const [account, role, binding] = parseAllDocuments(read('kubernetes-rbac/read-own-pod.yaml')).map(
      (document) => document.toJS() as Record<string, unknown>,
    );
    expect(() => new ServiceAccount(account).validate()).not.toThrow();
    expect(() => new Role(role).validate()).not.toThrow();
    const bound = new RoleBinding(binding as ConstructorParameters<typeof RoleBinding>[0]);
    expect(() => bound.validate()).not.toThrow();
    expect(new Role(role).rules).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }]);
    expect(bound.roleRef).toMatchObject({ kind: 'Role', name: new Role(role).metadata?.name });
    expect(bound.subjects).toEqual([{ kind: 'ServiceAccount', name: new ServiceAccount(account).metadata?.name }]);
  });
});

describe('ECS task definition', () => {
  it('runs drain-init as the entry point with stopTimeout as its grace period', () => {
    const task = JSON.parse(read('ecs/task-definition.json')) as {
      containerDefinitions: {
        entryPoint: string[];
        command: string[];
        stopTimeout: number;
        linuxParameters?: { initProcessEnabled?: boolean };
      }[];
    };
    const [worker] = task.containerDefinitions;
    if (worker === undefined) throw new Error('no container');
    const config = drainInitConfig([...worker.entryPoint, ...worker.command]);
    // ECS caps stopTimeout at 120 s.
    expect(worker.stopTimeout).toBeLessThanOrEqual(120);
    expect(config.gracePeriodMs).toBe(worker.stopTimeout * 1000);
    // ECS's own init would be PID 1 instead of drain-init.
    expect(worker.linuxParameters?.initProcessEnabled).not.toBe(true);
  });
});

describe('docker-compose', () => {
  it("gives drain-init the worker's stop_grace_period", () => {
    const compose = parseYaml(read('docker-compose/compose.yaml')) as {
      services: { worker: { stop_grace_period: string; environment: Record<string, string> } };
    };
    const { worker } = compose.services;
    expect(worker.environment.DRAIN_INIT_GRACE_PERIOD).toBe(worker.stop_grace_period);
  });
});

describe('the README', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

  it('has a row for every option, with its flag and its environment variable', () => {
    const rows = readme.split('\n').filter((line) => line.startsWith('| `-'));
    const missing = OPTIONS.filter(
      (spec) => !rows.some((row) => row.includes(`--${spec.name}`) && row.includes(envName(spec))),
    );
    expect(missing.map((spec) => spec.name)).toEqual([]);
  });
  const blocks = [...readme.matchAll(/```(?:yaml|json)\n([\s\S]*?)```/g)].map((match) => match[1] ?? '');
  const block = (marker: string): string => blocks.find((text) => text.includes(marker)) ?? '';
  /** Lines compared without indentation or a trailing comma, so an excerpt of a nested entry matches. */
  const lines = (text: string): string[] =>
    text
      .split('\n')
      .map((line) => line.trim().replace(/,$/, ''))
      .filter((line) => line !== '');

  it('shows examples/kubernetes/sidekiq.yaml as it is', () => {
    expect(block('kind: Deployment')).toBe(read('kubernetes/sidekiq.yaml'));
  });

  it('shows excerpts of the compose file and the ECS task definition that are in them', () => {
    expect(lines(read('docker-compose/compose.yaml'))).toEqual(
      expect.arrayContaining(lines(block('stop_grace_period'))),
    );
    expect(lines(read('ecs/task-definition.json'))).toEqual(expect.arrayContaining(lines(block('"stopTimeout"'))));
    expect(lines(block('stop_grace_period')).length).toBeGreaterThan(3);
    expect(lines(block('"stopTimeout"')).length).toBeGreaterThan(3);
  });
});
