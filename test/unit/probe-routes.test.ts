import { describe, expect, it } from 'vitest';
import { answer, route, type ProbeRequest } from '../../src/probe/routes.js';
import type { ProbeSnapshot } from '../../src/probe/state.js';
import { parseExposition } from '../helpers/exposition.js';

const SNAPSHOT: ProbeSnapshot = {
  state: 'running',
  childPid: 42,
  nowEpochMs: 1_795_325_500_000,
  uptimeS: 5,
  restarts: 0,
  jobs: { recovered: 0, dead: 0, held: 0 },
  workerDeaths: new Map(),
  stop: undefined,
  signalsForwarded: new Map([['SIGUSR1', 2]]),
  zombiesReaped: 3,
  redis: undefined,
  sidekiq: undefined,
};

function request(method: string, url: string, headers: ProbeRequest['headers'] = {}): ProbeRequest {
  return { method, url, headers };
}

describe('routing', () => {
  it('serves the four endpoints to GET and HEAD, with or without a query', () => {
    for (const endpoint of ['livez', 'readyz', 'status', 'metrics']) {
      expect(route(request('GET', `/${endpoint}`), '/')).toEqual({ endpoint });
      expect(route(request('HEAD', `/${endpoint}?verbose=1`), '/')).toEqual({ endpoint });
    }
  });

  it("serves sidekiq_alive's path, / unless told another, and never in place of its own", () => {
    expect(route(request('GET', '/'), '/')).toEqual({ endpoint: 'alive' });
    expect(route(request('HEAD', '/?x=1'), '/')).toEqual({ endpoint: 'alive' });
    expect(route(request('GET', '/health'), '/health')).toEqual({ endpoint: 'alive' });
    expect(route(request('GET', '/livez'), '/livez')).toEqual({ endpoint: 'livez' });
    const moved = route(request('GET', '/'), '/health');
    expect('refusal' in moved && moved.refusal).toMatchObject({
      status: 404,
      body: "not found: drain-init serves /livez, /readyz, /status, /metrics and /health (sidekiq_alive's)\n",
    });
  });

  it('answers 404 to any other path', () => {
    for (const url of ['/livez/', '/LIVEZ', '/metrics.txt', 'http://host/livez', '*', '//', undefined]) {
      const routed = route({ method: 'GET', url, headers: {} }, '/');
      expect('refusal' in routed && routed.refusal.status).toBe(404);
    }
  });

  it('answers 405 with Allow to other methods', () => {
    const routed = route(request('POST', '/livez'), '/');
    expect('refusal' in routed && routed.refusal).toMatchObject({
      status: 405,
      headers: { Allow: 'GET, HEAD' },
      body: 'method POST not allowed: use GET or HEAD\n',
    });
    expect('refusal' in routed && routed.refusal.headers).not.toHaveProperty('Connection');
  });

  it('refuses a request body with 413 and closes the connection instead of reading it', () => {
    for (const headers of [{ 'content-length': '5' }, { 'transfer-encoding': 'chunked' }]) {
      const routed = route(request('GET', '/livez', headers), '/');
      expect('refusal' in routed && routed.refusal).toMatchObject({ status: 413, headers: { Connection: 'close' } });
    }
    expect(route(request('GET', '/livez', { 'content-length': '0' }), '/')).toEqual({ endpoint: 'livez' });
    const refused = route(request('PUT', '/nowhere', { 'content-length': '5' }), '/');
    expect('refusal' in refused && refused.refusal.headers.Connection).toBe('close');
  });
});

describe('answers', () => {
  it('answers as sidekiq_alive did where it answered, with the meaning of /livez', () => {
    expect(answer('alive', { snapshot: SNAPSHOT, maxBeatAgeMs: 60_000 })).toMatchObject({
      status: 200,
      body: 'Alive!\n',
    });
    const gone = { ...SNAPSHOT, childPid: undefined, state: 'exited' as const };
    expect(answer('alive', { snapshot: gone, maxBeatAgeMs: 60_000 })).toMatchObject({
      status: 404,
      body: "Can't find the alive key: the worker has exited\n",
    });
    expect(answer('livez', { snapshot: gone, maxBeatAgeMs: 60_000 }).status).toBe(503);
  });

  it('gives liveness and readiness as 200 or 503 with one line', () => {
    expect(answer('livez', { snapshot: SNAPSHOT, maxBeatAgeMs: 60_000 })).toMatchObject({
      status: 200,
      body: 'alive\n',
    });
    const stopping = answer('readyz', { snapshot: { ...SNAPSHOT, state: 'stopping' }, maxBeatAgeMs: 60_000 });
    expect(stopping).toMatchObject({ status: 503, body: 'stopping: drain-init is stopping the worker\n' });
    expect(stopping.headers['Content-Type']).toBe('text/plain; charset=utf-8');
  });

  it('gives the status as JSON', () => {
    const status = answer('status', { snapshot: SNAPSHOT, maxBeatAgeMs: 60_000 });
    expect(status.headers['Content-Type']).toBe('application/json');
    expect(JSON.parse(status.body)).toMatchObject({ state: 'running', childPid: 42 });
  });

  it('gives valid exposition text with the Sidekiq families only when there are figures', () => {
    const without = parseExposition(answer('metrics', { snapshot: SNAPSHOT, maxBeatAgeMs: 60_000 }).body);
    expect([...without.keys()].some((name) => name.startsWith('sidekiq_'))).toBe(false);
    const stats = {
      ...{ processed: 10, failed: 1, scheduled: 0, retry: 0, dead: 0, processes: 1, busy: 0, workers: 5, enqueued: 0 },
      ...{ queues: [], hosts: [], serving: [], running: [] },
    };
    const metrics = answer('metrics', { snapshot: SNAPSHOT, maxBeatAgeMs: 60_000, stats });
    expect(metrics.headers['Content-Type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(parseExposition(metrics.body).get('sidekiq_processed_jobs_total')?.samples).toEqual([
      { labels: {}, value: 10 },
    ]);
  });
});
