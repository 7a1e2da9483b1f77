import { describe, expect, it } from 'vitest';
import {
  beatIntervalS,
  isAlive,
  sidekiqHostname,
  supervisedProcesses,
  type Supervised,
} from '../../src/sidekiq/match.js';
import { parseSnapshot, type SidekiqProcess } from '../../src/sidekiq/parse.js';
import { identityHashes, capturedDump, versionDump, type Dump } from '../fixtures/sidekiq-versions/dumps.js';

const HOST = 'worker-7f9c';

function ours(dump: Dump, supervised: Partial<Supervised> = {}): string[] {
  const { processes } = parseSnapshot(identityHashes(dump));
  const matched = supervisedProcesses(processes, {
    hostname: HOST,
    pids: new Set([1, 6, 7]),
    nowEpochS: dump.captured_at_epoch,
    childStartedEpochS: 0,
    ...supervised,
  });
  return matched.map((process) => process.identity);
}

function process(beatAgeS: number, version?: string): SidekiqProcess {
  const base = {
    identity: 'h:7:0123456789ab',
    hostname: 'h',
    pid: 7,
    tag: '',
    concurrency: 5,
    queues: ['default'],
    busy: 0,
    quiet: false,
    beatEpochS: 1_000 - beatAgeS,
  };
  return version === undefined ? base : { ...base, version };
}

describe('beat interval by version', () => {
  it.each([
    ['5.2.10', 5],
    ['6.5.12', 5],
    ['7.0.2', 10],
    ['8.1.7', 10],
    ['10.0.0', 10],
    ['garbage', 10],
    [undefined, 10],
  ])('%s: %i s', (version, seconds) => {
    expect(beatIntervalS(version)).toBe(seconds);
  });

  it('declares a process dead after three missed beats', () => {
    expect(isAlive(process(14.9, '6.4.1'), 1_000)).toBe(true);
    expect(isAlive(process(15, '6.4.1'), 1_000)).toBe(false);
    expect(isAlive(process(29.9), 1_000)).toBe(true);
    expect(isAlive(process(30), 1_000)).toBe(false);
    expect(isAlive(process(29.9, '7.3.9'), 1_000)).toBe(true);
    expect(isAlive(process(30, '8.0.7'), 1_000)).toBe(false);
  });
});

describe('our processes: same host, pid in our tree, fresh beat', () => {
  it.each([
    ['sidekiq-5.2.10', 'worker-7f9c:7:7c11c05dff7b'],
    ['sidekiq-6.5.12', 'worker-7f9c:7:e803e103337b'],
    ['sidekiq-7.3.9', 'worker-7f9c:7:9481201bba31'],
    ['sidekiq-8.0.7', 'worker-7f9c:7:f9732773c14b'],
    ['sidekiq-8.1.7', 'worker-7f9c:7:7152272ec924'],
  ])(
    '%s: the live one, not the ghost with the same host and pid, nor the other pod with the same pid',
    (name, identity) => {
      expect(ours(versionDump(name))).toEqual([identity]);
    },
  );

  it('finds the other pod only from its own host', () => {
    expect(ours(versionDump('sidekiq-7.3.9'), { hostname: 'worker-a1b2' })).toEqual(['worker-a1b2:7:f985ef40295f']);
    expect(ours(versionDump('sidekiq-7.3.9'), { hostname: 'elsewhere' })).toEqual([]);
  });

  it('finds several processes of our tree and leaves out the one of our host outside it', () => {
    const dump = versionDump('sidekiq-8.1.7');
    expect(ours(dump, { pids: new Set([1, 7, 12]) })).toEqual([
      'worker-7f9c:12:aa8053e9e2e6',
      'worker-7f9c:7:7152272ec924',
    ]);
    expect(ours(dump, { pids: new Set([1, 7, 12, 40]) })).toEqual([
      'worker-7f9c:12:aa8053e9e2e6',
      'worker-7f9c:40:b0860e9dcde5',
      'worker-7f9c:7:7152272ec924',
    ]);
  });

  it('takes the stale ghost for dead 30 s after its beat, not before', () => {
    const dump = versionDump('sidekiq-8.1.7');
    const ghostBeat = 1795400459.1484;
    expect(ours(dump, { nowEpochS: ghostBeat + 29.9 })).toContain('worker-7f9c:7:30a7b511159a');
    expect(ours(dump, { nowEpochS: ghostBeat + 30 })).not.toContain('worker-7f9c:7:30a7b511159a');
  });

  it('leaves out a fresh ghost with our host and pid that last beat before the child started: a restarted worker often gets the same pid', () => {
    const dump = versionDump('sidekiq-8.1.7');
    const ghostBeat = 1795400459.1484;
    expect(ours(dump, { nowEpochS: ghostBeat + 5, childStartedEpochS: ghostBeat })).toContain(
      'worker-7f9c:7:30a7b511159a',
    );
    expect(ours(dump, { nowEpochS: ghostBeat + 5, childStartedEpochS: ghostBeat + 0.001 })).toEqual([
      'worker-7f9c:7:7152272ec924',
    ]);
  });

  it('real 6.4.1: the restarted worker, not the SIGKILLed one whose pid has left the tree', () => {
    expect(ours(capturedDump('run2-02-just-after-sigkill'), { hostname: 'vm', pids: new Set([1]) })).toEqual([]);
    expect(
      ours(capturedDump('run2-03-restarted-ghost-visible'), { hostname: 'vm', pids: new Set([1, 30630]) }),
    ).toEqual(['vm:30630:9ef0d99c2bdc']);
    expect(ours(capturedDump('run1-01-running'), { hostname: 'vm', pids: new Set([27869]) })).toEqual([
      'vm:27869:ab5cf2f4c0e6',
    ]);
  });

  it('real 6.4.1: not from the lingering hash of a worker that has left processes', () => {
    const afterExit = capturedDump('run1-03-after-term-exit');
    expect(afterExit.keys['vm:27869:ab5cf2f4c0e6']?.type).toBe('hash');
    expect(ours(afterExit, { hostname: 'vm', pids: new Set([27869]) })).toEqual([]);
  });
});

describe("Sidekiq's hostname", () => {
  it('is DYNO when set, even empty, as in Ruby, else the host name', () => {
    expect(sidekiqHostname({ DYNO: 'worker.1' }, 'pod-1')).toBe('worker.1');
    expect(sidekiqHostname({ DYNO: '' }, 'pod-1')).toBe('');
    expect(sidekiqHostname({}, 'pod-1')).toBe('pod-1');
  });
});
