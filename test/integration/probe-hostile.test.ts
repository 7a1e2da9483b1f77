// Hostile clients against the probe endpoint of drain-init as PID 1: garbage bytes, huge headers,
// 1,000 idle connections, slow clients and request bodies, all at once, while signals keep coming.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { HEADERS_TIMEOUT_MS, MAX_BODY_WAIT_MS, MAX_CONNECTIONS } from '../../src/probe/server.js';
import { FIXTURES, killedAfterEach, logLines, recorded, tempPath, waitFor } from '../helpers/pid1.js';
import { probeRequest, startWithProbe, waitForProbe } from '../helpers/probe.js';

const RECORDER = `${FIXTURES}recorder.py`;
const track = killedAfterEach();

/**
 * What became of one hostile connection: the status line the server answered, or '' when it closed without
 * one, and the first error the connection met ('' for a clean close).
 */
interface Outcome {
  readonly status: string;
  readonly closedAfterMs: number;
  readonly error: string;
}

/** Opens a connection, lets `act` write on it, and resolves once the server has closed it. */
function hostile(port: number, act: (socket: Socket) => void): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = performance.now();
    let received = '';
    let error = '';
    const socket = connect(port, '127.0.0.1', () => act(socket));
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('error', (cause: NodeJS.ErrnoException) => (error ||= cause.code ?? cause.message));
    socket.on('close', () =>
      resolve({
        status: /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? '',
        closedAfterMs: performance.now() - started,
        error,
      }),
    );
  });
}

function many(count: number, start: () => Promise<Outcome>): Promise<Outcome[]> {
  return Promise.all(Array.from({ length: count }, start));
}

function slowly(socket: Socket, text: string, everyMs: number): void {
  let index = 0;
  const timer = setInterval(() => {
    if (index >= text.length || socket.destroyed) clearInterval(timer);
    else socket.write(text[index++] ?? '');
  }, everyMs);
  socket.on('close', () => clearInterval(timer));
}

function vmRssKb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

/** utime + stime of a process, in clock ticks (100 a second). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(fields[11]) + Number(fields[12]);
}

describe('the probe endpoint under hostile clients', () => {
  it('keeps forwarding signals, answers again afterwards and stays within its memory', async () => {
    const file = tempPath('signals');
    const { run, port } = await startWithProbe(['--', RECORDER, file]);
    track(run);
    await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('READY'), 'the recorder');
    const pid = await run.pid();
    const rssBeforeKb = vmRssKb(pid);
    let peakRssKb = rssBeforeKb;
    const sampler = setInterval(() => (peakRssKb = Math.max(peakRssKb, vmRssKb(pid))), 50);

    // Signals all along, one at a time: each must reach the worker before the next is sent (two
    // pending USR1 would merge into one in the kernel), while one kind of attack follows another.
    let forwarded = 0;
    let phase = 'garbage';
    let attacking = true;
    const sending = (async () => {
      while (attacking) {
        const before = recorded(file).length;
        process.kill(pid, 'SIGUSR1');
        await waitFor(
          () => recorded(file).length > before || undefined,
          `USR1 forwarded during the ${phase} attack`,
          2_000,
        );
        forwarded++;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const garbage = await many(100, () => hostile(port, (socket) => socket.write(randomBytes(4_096))));
    phase = 'huge headers';
    const huge = await many(50, () =>
      hostile(port, (socket) =>
        socket.write(`GET /livez HTTP/1.1\r\nHost: probe\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`),
      ),
    );
    phase = 'slow clients';
    const slow = await many(20, () =>
      hostile(port, (socket) => slowly(socket, 'GET /livez HTTP/1.1\r\nHost: probe\r\n\r\n', 300)),
    );
    phase = 'request bodies';
    const bodies = await many(20, () =>
      hostile(port, (socket) =>
        socket.write(
          `POST /livez HTTP/1.1\r\nHost: probe\r\nContent-Length: ${1024 * 1024}\r\n\r\n${'b'.repeat(1024 * 1024)}`,
        ),
      ),
    );
    phase = 'idle connections';
    const idle = await many(1_000, () => hostile(port, () => {}));
    attacking = false;
    await sending;
    clearInterval(sampler);

    // The attack lasts over 5 s (two header timeouts): signals went through all along it.
    expect(forwarded).toBeGreaterThan(20);
    expect(recorded(file)).toHaveLength(forwarded);
    // Each kind is answered with its status and closed, or refused at the connection cap (no status).
    const statuses = (outcomes: Outcome[]) => new Set(outcomes.map((outcome) => outcome.status));
    expect(statuses(garbage)).toContain('400');
    expect([...statuses(garbage)].every((status) => ['', '400'].includes(status))).toBe(true);
    expect(statuses(huge)).toEqual(new Set(['431']));
    expect(statuses(slow)).toEqual(new Set(['408']));
    expect(Math.max(...slow.map((outcome) => outcome.closedAfterMs))).toBeLessThan(2 * HEADERS_TIMEOUT_MS);
    expect(statuses(bodies)).toEqual(new Set(['405']));
    // As many as the connection cap time out after the header timeout, the others are refused at once.
    expect(statuses(idle)).toEqual(new Set(['', '408']));
    expect(idle.filter((outcome) => outcome.status === '408').length).toBeGreaterThanOrEqual(MAX_CONNECTIONS);
    expect(idle.filter((outcome) => outcome.status === '').length).toBeGreaterThan(800);
    expect(Math.max(...idle.map((outcome) => outcome.closedAfterMs))).toBeLessThan(2 * HEADERS_TIMEOUT_MS);
    expect(peakRssKb - rssBeforeKb).toBeLessThan(40 * 1024);

    await waitForProbe(port, '/livez', (answer) => answer.status === 200, 'the endpoint to answer again', 5_000);
    const ticks = cpuTicks(pid);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    // Idle again: no busy loop left behind.
    expect(cpuTicks(pid) - ticks).toBeLessThan(20);
    const warnings = logLines(run.stderr()).filter((line) => String(line.msg).startsWith('probe:'));
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings.length).toBeLessThanOrEqual(6);
  });
});

describe('a request with a body, refused', () => {
  const post = (length: number) => `POST /livez HTTP/1.1\r\nHost: probe\r\nContent-Length: ${length}\r\n\r\n`;

  it('is answered once its body is read, so a client still sending it gets the answer and a clean close', async () => {
    const { run, port } = await startWithProbe(['--', 'sleep', '120']);
    track(run);
    const pauseMs = 500;
    let answeredBeforeTheBody: boolean | undefined;
    const outcome = await hostile(port, (socket) => {
      socket.write(`${post(256 * 1024)}${'b'.repeat(1024)}`);
      setTimeout(() => {
        answeredBeforeTheBody = socket.bytesRead > 0;
        socket.write('b'.repeat(255 * 1024));
      }, pauseMs);
    });
    expect({ answeredBeforeTheBody, status: outcome.status, error: outcome.error }).toEqual({
      answeredBeforeTheBody: false,
      status: '405',
      error: '',
    });
    // Answered when the body ends, not when the wait for it runs out.
    expect(outcome.closedAfterMs - pauseMs).toBeLessThan(MAX_BODY_WAIT_MS / 2);
  });

  it('is answered without the rest of a body that stalls or runs past the limit', async () => {
    const { run, port } = await startWithProbe(['--', 'sleep', '120']);
    track(run);
    // Each client sends part of its body and then nothing more, without closing.
    const sentPart = (length: number, part: number) =>
      hostile(port, (socket) => socket.write(`${post(length)}${'b'.repeat(part)}`));
    const [stalled, tooLong] = await Promise.all([
      sentPart(1024 * 1024, 1024),
      sentPart(64 * 1024 * 1024, 5 * 1024 * 1024),
    ]);
    expect([stalled.status, tooLong.status]).toEqual(['405', '405']);
    expect(stalled.closedAfterMs).toBeGreaterThanOrEqual(MAX_BODY_WAIT_MS);
    // Past the limit it is answered as soon as the limit is read, not when the wait runs out.
    expect(tooLong.closedAfterMs).toBeLessThan(stalled.closedAfterMs / 2);
  });
});

describe('the probe endpoint under slowloris', () => {
  it('answers every probe while 1,000 idle connections are held open, some trickling header bytes', async () => {
    const { run, port } = await startWithProbe(['--', 'sleep', '120']);
    track(run);
    // The attacker is a process of its own, as the kubelet is: it keeps 1,000 connections open, opening
    // each one closed again at once.
    const attacker = spawn(process.execPath, [`${FIXTURES}slowloris.mjs`, String(port), '1000'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    attacker.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const ended = new Promise((resolve) => attacker.once('exit', resolve));
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      // As the kubelet probes: a new connection each time, a few a second, for longer than the header timeout.
      const answers: string[] = [];
      for (let probe = 0; probe < 24; probe++) {
        const path = probe % 2 === 0 ? '/livez' : '/';
        answers.push(
          await probeRequest(port, path).then(
            (answer) => `${path} ${answer.status}`,
            (error: Error) => `${path} ${error.message}`,
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect(answers).toEqual(Array.from({ length: 24 }, (_, probe) => (probe % 2 === 0 ? '/livez 200' : '/ 200')));
    } finally {
      attacker.kill('SIGTERM');
      await ended;
    }
    // The attack was real: connections kept being pushed out and opened again.
    expect(Number(output.trim())).toBeGreaterThan(1_500);
    const evicted = logLines(run.stderr()).filter((line) => String(line.msg).includes('idle the longest'));
    expect(evicted.length).toBeGreaterThan(0);
  }, 60_000);
});
