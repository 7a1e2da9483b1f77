// The forwarder's handlers are installed before the worker starts and before the stop sequence exists: what
// they hear until its takeOver is held, then dealt with in order. Real signals, sent to this test's own
// process (vitest runs each file in a process of its own), and a real child to forward to.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, expect, it } from 'vitest';
import { SignalForwarder } from '../../src/process/forward.js';
import { parseSignal } from '../../src/process/signals.js';
import { captureLogger } from '../helpers/fake.js';

const SIGTERM = parseSignal('TERM');
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});

it('holds the stop signal and the others heard before takeOver, then gives the stop to the sequence and forwards the others', async () => {
  const { log, records } = captureLogger();
  const forwarder = new SignalForwarder({ rewrite: new Map(), processGroup: false }, log);
  forwarder.install((signal) => signal === SIGTERM);
  cleanups.push(() => forwarder.uninstall());
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  cleanups.push(() => child.kill('SIGKILL'));
  await once(child, 'spawn');
  forwarder.attach(child.pid);
  const childExit = once(child, 'exit');

  // Heard by JavaScript (this listener runs beside the forwarder's), before any takeOver.
  const heard = Promise.all([once(process, 'SIGTERM'), once(process, 'SIGUSR2')]);
  process.kill(process.pid, 'SIGTERM');
  process.kill(process.pid, 'SIGUSR2');
  await heard;
  expect(child.exitCode).toBeNull();
  expect(child.signalCode).toBeNull();
  expect(records.filter((record) => record.msg === 'forwarded signal')).toEqual([]);

  const taken: number[] = [];
  forwarder.takeOver((signal) => {
    taken.push(signal);
    return true;
  });
  expect(taken).toEqual([SIGTERM]);
  expect(await childExit).toEqual([null, 'SIGUSR2']);
  expect(records.filter((record) => record.msg === 'forwarded signal').map((record) => record.signal)).toEqual([
    'SIGUSR2',
  ]);
});

it('after takeOver deals with each signal as it comes', async () => {
  const { log } = captureLogger();
  const forwarder = new SignalForwarder({ rewrite: new Map(), processGroup: false }, log);
  forwarder.install((signal) => signal === SIGTERM);
  cleanups.push(() => forwarder.uninstall());
  const taken: number[] = [];
  forwarder.takeOver((signal) => {
    taken.push(signal);
    return true;
  });
  const heard = once(process, 'SIGTERM');
  process.kill(process.pid, 'SIGTERM');
  await heard;
  expect(taken).toEqual([SIGTERM]);
});
