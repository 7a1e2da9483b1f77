// The probe endpoint of drain-init as PID 1, asked over real HTTP in each state of a stop, and its
// /metrics checked line by line with a strict parser against a real Redis seeded with Sidekiq's data.
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { FIXTURES, killedAfterEach, logLines, recorded, startDrainInit, tempPath, waitFor } from '../helpers/pid1.js';
import { parseExposition, type ParsedSample } from '../helpers/exposition.js';
import { probeRequest, probeStatus, startWithProbe, waitForProbe } from '../helpers/probe.js';
import { freePort, redisTestBed } from '../helpers/redis.js';
import { enqueue } from '../helpers/sidekiq.js';

const RECORDER = `${FIXTURES}recorder.py`;
// TSTP at T0, TERM (and CONT) at 3 - 1 - 0.5 = 1.5 s, KILL at 3 - 0.5 = 2.5 s.
const TIMED = [
  '--preset',
  'sidekiq',
  '--grace-period',
  '3s',
  '--shutdown-timeout',
  '1s',
  '--stop-margin',
  '500ms',
  '--kill-margin',
  '500ms',
];
const track = killedAfterEach();

async function startRecorder(args: readonly string[], recorderFlags: readonly string[] = []) {
  const file = tempPath('signals');
  const { run, port } = await startWithProbe([...args, '--', RECORDER, file, ...recorderFlags]);
  track(run);
  await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('READY'), 'the recorder');
  return { run, port, file, pid: await run.pid() };
}

type Families = Map<string, ParsedSample[]>;

async function metrics(port: number): Promise<Families> {
  const answer = await probeRequest(port, '/metrics');
  expect(answer.status).toBe(200);
  expect(answer.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
  return new Map([...parseExposition(answer.body)].map(([name, family]) => [name, family.samples]));
}

function value(families: Families, name: string, labels: Record<string, string> = {}): number | undefined {
  return families.get(name)?.find((sample) => JSON.stringify(sample.labels) === JSON.stringify(labels))?.value;
}

describe('the probe endpoint through a stop', () => {
  it('answers in each state: running, quieting, stopping; readiness falls within 100 ms of SIGTERM', async () => {
    const { run, port, pid, file } = await startRecorder(TIMED);

    expect(await probeRequest(port, '/livez')).toMatchObject({ status: 200, body: 'alive\n' });
    expect(await probeRequest(port, '/readyz')).toMatchObject({ status: 200, body: 'ready\n' });
    const running = await probeStatus(port);
    expect(running).toMatchObject({ state: 'running', restarts: 0 });
    expect(running.childPid).toEqual(expect.any(Number));
    expect(running).not.toHaveProperty('stop');
    process.kill(pid, 'SIGUSR1');
    await waitFor(() => recorded(file).length === 1, 'USR1 at the worker');
    let families = await metrics(port);
    expect(value(families, 'drain_init_state', { state: 'running' })).toBe(1);
    expect(value(families, 'drain_init_child_up')).toBe(1);
    expect(value(families, 'drain_init_signals_forwarded_total', { signal: 'SIGUSR1' })).toBe(1);

    const t0 = performance.now();
    process.kill(pid, 'SIGTERM');
    const notReady = await waitForProbe(port, '/readyz', (answer) => answer.status === 503, 'readiness to fall', 1_000);
    expect(performance.now() - t0).toBeLessThan(100);
    expect(notReady.body).toBe('quieting: drain-init is stopping the worker\n');
    expect(await probeRequest(port, '/livez')).toMatchObject({ status: 200, body: 'alive\n' });
    const quieting = await probeStatus(port);
    expect(quieting).toMatchObject({
      state: 'quieting',
      stop: { plan: 'TSTP now, TERM at +1.5 s, KILL at +2.5 s, deadline at +3.0 s' },
    });
    const stop = quieting.stop as { deadline: string; deadlineInSeconds: number };
    expect(stop.deadlineInSeconds).toBeGreaterThan(2);
    expect(stop.deadlineInSeconds).toBeLessThanOrEqual(3);
    expect(Math.abs(Date.parse(stop.deadline) - (Date.now() + stop.deadlineInSeconds * 1000))).toBeLessThan(500);
    families = await metrics(port);
    expect(value(families, 'drain_init_state', { state: 'quieting' })).toBe(1);
    expect(value(families, 'drain_init_state', { state: 'running' })).toBe(0);

    await waitForProbe(
      port,
      '/status',
      (answer) => (JSON.parse(answer.body) as { state: string }).state === 'stopping',
      'the stop step',
      3_000,
    );
    expect(await probeRequest(port, '/readyz')).toMatchObject({
      status: 503,
      body: 'stopping: drain-init is stopping the worker\n',
    });
    expect((await probeRequest(port, '/livez')).status).toBe(200);
    expect(value(await metrics(port), 'drain_init_state', { state: 'stopping' })).toBe(1);

    expect((await run.done).code).toBe(137);
  });

  it('answers in the starting state while the worker waits to be restarted, then counts the restart', async () => {
    const { port, pid, file } = await startRecorder(
      ['--restart', 'always', '--restart-delay', '2s'],
      ['--exit-on', 'SIGUSR1'],
    );
    process.kill(pid, 'SIGUSR1');
    await waitForProbe(
      port,
      '/status',
      (answer) => (JSON.parse(answer.body) as { state: string }).state === 'starting',
      'the starting state',
      2_000,
    );
    expect(await probeStatus(port)).toMatchObject({ state: 'starting', childPid: null });
    expect(await probeRequest(port, '/readyz')).toMatchObject({
      status: 503,
      body: 'starting: the worker is about to be restarted\n',
    });
    expect((await probeRequest(port, '/livez')).status).toBe(200);
    const families = await metrics(port);
    expect(value(families, 'drain_init_state', { state: 'starting' })).toBe(1);
    expect(value(families, 'drain_init_child_up')).toBe(0);

    await waitForProbe(port, '/readyz', (answer) => answer.status === 200, 'the restarted worker', 5_000);
    expect(await probeStatus(port)).toMatchObject({ state: 'running', restarts: 1 });
    expect(value(await metrics(port), 'drain_init_restarts_total')).toBe(1);
    await waitFor(() => readFileSync(file, 'utf8').match(/^READY/gm)?.length === 2 || undefined, 'the second recorder');
  });

  it('never keeps drain-init alive: it exits with the worker while clients hold connections open', async () => {
    const { run, port, pid } = await startRecorder([], ['--exit-on', 'SIGTERM']);
    const sockets = await Promise.all(
      Array.from(
        { length: 5 },
        () =>
          new Promise<ReturnType<typeof connect>>((resolve) => {
            const socket = connect(port, '127.0.0.1', () => resolve(socket));
            socket.on('error', () => {});
          }),
      ),
    );
    // One connection kept alive after an answer, the others idle before any request.
    sockets[0]?.write('GET /livez HTTP/1.1\r\nHost: probe\r\n\r\n');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const t0 = performance.now();
    process.kill(pid, 'SIGTERM');
    const result = await run.done;
    // The worker exits on TERM at once; the sockets would time out only after 2 s (idle) and 5 s (kept alive).
    expect(result.code).toBe(0);
    expect(performance.now() - t0).toBeLessThan(1_500);
    for (const socket of sockets) socket.destroy();
  });

  it('answers HEAD like GET without a body, 405 to other methods, 404 elsewhere, and refuses bodies', async () => {
    const { port } = await startRecorder([]);
    const head = await probeRequest(port, '/readyz', 'HEAD');
    expect(head).toMatchObject({ status: 200, body: '' });
    expect(head.headers['content-length']).toBe('6');
    expect(await probeRequest(port, '/livez', 'DELETE')).toMatchObject({
      status: 405,
      body: 'method DELETE not allowed: use GET or HEAD\n',
    });
    expect((await probeRequest(port, '/livez', 'DELETE')).headers.allow).toBe('GET, HEAD');
    expect((await probeRequest(port, '/healthz')).status).toBe(404);
    const withBody = await rawExchange(port, 'GET /status HTTP/1.1\r\nHost: probe\r\nContent-Length: 5\r\n\r\nhello');
    expect(withBody).toMatch(/^HTTP\/1\.1 413 Payload Too Large\r\n/);
    expect(withBody).toContain('Connection: close');
  });

  it("answers as sidekiq_alive did, on its port and path from sidekiq_alive's own variables", async () => {
    const file = tempPath('signals');
    const port = await freePort();
    const env = { SIDEKIQ_ALIVE_PORT: String(port), SIDEKIQ_ALIVE_PATH: '/alive' };
    const run = track(startDrainInit(['--probe-host', '127.0.0.1', '--', RECORDER, file], { env }));
    await waitFor(() => run.stderr().includes('"probe endpoint listening"') || undefined, 'the probe endpoint');
    expect(await probeRequest(port, '/alive')).toMatchObject({ status: 200, body: 'Alive!\n' });
    expect((await probeRequest(port, '/alive', 'HEAD')).status).toBe(200);
    expect((await probeRequest(port, '/')).status).toBe(404);
    expect((await probeRequest(port, '/livez')).status).toBe(200);
  });

  it('turns off with --probe-port 0', async () => {
    const file = tempPath('signals');
    const run = track(startDrainInit(['--probe-port', '0', '--', RECORDER, file]));
    await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('READY'), 'the recorder');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(run.stderr()).not.toContain('probe endpoint');
  });

  it('logs one warning and runs the worker on when the port is taken', async () => {
    const { run, port } = await startRecorder([]);
    const file = tempPath('signals');
    const second = track(
      startDrainInit(['--probe-host', '127.0.0.1', '--probe-port', String(port), '--', RECORDER, file]),
    );
    await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('READY'), 'the second recorder');
    await waitFor(() => second.stderr().includes('probe endpoint not started') || undefined, 'the warning');
    const warning = logLines(second.stderr()).find((line) => String(line.msg).startsWith('probe endpoint not started'));
    expect(warning).toMatchObject({
      level: 40,
      port,
      msg: 'probe endpoint not started, the worker runs without it; choose another --probe-port, or 0 for none',
    });
    expect(String(warning?.err)).toContain('EADDRINUSE');
    expect((await probeRequest(port, '/livez')).status).toBe(200);
    expect(run.process.exitCode).toBeNull();
  });
});

/** Writes raw bytes on a new connection and returns all it read until the server closed it. */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('close', () => resolve(received));
    socket.on('error', reject);
    socket.setTimeout(5_000, () => socket.destroy(new Error('the server did not close the connection')));
  });
}

describe('/metrics against a Redis seeded with Sidekiq data', () => {
  const redis = redisTestBed();

  async function seed(): Promise<number> {
    const now = Date.now() / 1000;
    await redis().pipeline([
      ['SET', 'stat:processed', 1234],
      ['SET', 'stat:failed', 56],
      ['ZADD', 'schedule', now + 60, '{"jid":"s1"}', now + 120, '{"jid":"s2"}'],
      ['ZADD', 'retry', now + 30, '{"jid":"r1"}'],
      ['ZADD', 'dead', now - 30, '{"jid":"d1"}', now - 20, '{"jid":"d2"}', now - 10, '{"jid":"d3"}'],
      ['SADD', 'processes', 'other-host:11:aaaaaaaaaaaa', 'other-host:12:bbbbbbbbbbbb'],
      ['HSET', 'other-host:11:aaaaaaaaaaaa', 'busy', 3, 'quiet', 'false', 'beat', now],
      ['HSET', 'other-host:12:bbbbbbbbbbbb', 'busy', 2, 'quiet', 'true', 'beat', now],
    ]);
    for (let job = 0; job < 4; job++) await enqueue(redis(), { args: [1, `personal-data-${job}`], queue: 'default' });
    await enqueue(redis(), { args: [1, 'x'], queue: 'we"ird\\queue' });
    // An empty queue Sidekiq still lists, as it never prunes `queues`.
    await redis().call('SADD', 'queues', 'critical');
    return now;
  }

  it("reports Sidekiq's figures under the exporter's names, every line valid, values as in Redis", async () => {
    const seededAt = await seed();
    const { port } = await startRecorder(['--preset', 'sidekiq', '--redis-url', redis().url]);
    const families = await waitForMetric(port, 'sidekiq_processed_jobs_total');
    expect(value(families, 'sidekiq_processed_jobs_total')).toBe(1234);
    expect(value(families, 'sidekiq_failed_jobs_total')).toBe(56);
    expect(value(families, 'sidekiq_scheduled_jobs')).toBe(2);
    expect(value(families, 'sidekiq_retry_jobs')).toBe(1);
    expect(value(families, 'sidekiq_dead_jobs')).toBe(3);
    expect(value(families, 'sidekiq_processes')).toBe(2);
    expect(value(families, 'sidekiq_busy_workers')).toBe(5);
    expect(families.get('sidekiq_queue_enqueued_jobs')).toEqual([
      { labels: { name: 'critical' }, value: 0 },
      { labels: { name: 'default' }, value: 4 },
      { labels: { name: 'we"ird\\queue' }, value: 1 },
    ]);
    const latency = value(families, 'sidekiq_queue_latency_seconds', { name: 'default' }) ?? -1;
    expect(latency).toBeGreaterThan(0);
    expect(latency).toBeLessThan(Date.now() / 1000 - seededAt + 1);
    expect(value(families, 'sidekiq_queue_latency_seconds', { name: 'critical' })).toBe(0);
    expect(value(families, 'drain_init_redis_up')).toBe(1);
    expect(value(families, 'drain_init_heartbeat_failures_total')).toBe(0);

    const text = (await probeRequest(port, '/metrics')).body + (await probeRequest(port, '/status')).body;
    expect(text).not.toContain('personal-data');
    expect(await probeStatus(port)).toMatchObject({
      redisConnected: true,
      sidekiq: { processes: [], jobsInFlight: 0, lastBeatAgeSeconds: null },
    });
  });

  it('costs Redis one script run per 5 s however often it is scraped', async () => {
    await seed();
    const { port } = await startRecorder(['--preset', 'sidekiq', '--redis-url', redis().url]);
    await waitForMetric(port, 'sidekiq_processed_jobs_total');
    const before = await scriptRuns();
    for (let scrape = 0; scrape < 50; scrape++) await probeRequest(port, '/metrics');
    const after = await scriptRuns();
    expect(after - before).toBeLessThanOrEqual(1);
  });

  it('reads at most 100 queues and says so in a warning', async () => {
    await redis().call(
      'SADD',
      'queues',
      ...Array.from({ length: 105 }, (_, index) => `q${String(index).padStart(3, '0')}`),
    );
    const { run, port } = await startRecorder(['--preset', 'sidekiq', '--redis-url', redis().url]);
    const families = await waitForMetric(port, 'sidekiq_queue_enqueued_jobs');
    expect(families.get('sidekiq_queue_enqueued_jobs')).toHaveLength(100);
    expect(families.get('sidekiq_queue_enqueued_jobs')?.at(-1)?.labels).toEqual({ name: 'q099' });
    const warnings = logLines(run.stderr()).filter(
      (line) => line.msg === 'Sidekiq has 105 queues: metrics cover the first 100 by name',
    );
    expect(warnings).toHaveLength(1);
  });

  it('leaves Sidekiq out for a generic worker, and reports Redis down without failing', async () => {
    const { port } = await startRecorder([
      '--redis-url',
      redis().url.replace(`:${redis().port}`, ':1'),
      '--heartbeat-interval',
      '100ms',
    ]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const families = await metrics(port);
    expect([...families.keys()].filter((name) => name.startsWith('sidekiq_'))).toEqual([]);
    expect(value(families, 'drain_init_redis_up')).toBe(0);
    expect(value(families, 'drain_init_heartbeat_failures_total')).toBeGreaterThanOrEqual(3);
    expect(await probeStatus(port)).toMatchObject({ redisConnected: false });
    expect((await probeRequest(port, '/livez')).status).toBe(200);
  });

  async function scriptRuns(): Promise<number> {
    const stats = await redis().command('INFO', 'commandstats');
    return [...stats.matchAll(/^cmdstat_(?:eval|evalsha):calls=(\d+)/gm)].reduce(
      (sum, match) => sum + Number(match[1]),
      0,
    );
  }
});

async function waitForMetric(port: number, name: string): Promise<Families> {
  let families = await metrics(port);
  const deadline = Date.now() + 10_000;
  while (!families.has(name)) {
    if (Date.now() > deadline) throw new Error(`no ${name} in /metrics`);
    await new Promise((resolve) => setTimeout(resolve, 200));
    families = await metrics(port);
  }
  return families;
}
