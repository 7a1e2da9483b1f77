import { describe, expect, it } from 'vitest';
import { InFlightJobs, processOfIdentity } from '../../src/recovery/ack.js';

const A = 'pod:7';
const B = 'pod:8';
const beat = (...jids: string[]) => new Set(jids);

describe('the ack rule', () => {
  it('takes a job out once a beat that showed it running no longer does', () => {
    const jobs = new InFlightJobs();
    jobs.fetched('j1', A);
    expect(jobs.beat(A, beat('j1'))).toEqual([]);
    expect(jobs.beat(A, beat('j1'))).toEqual([]);
    expect(jobs.beat(A, beat())).toEqual(['j1']);
    expect(jobs.size).toBe(0);
  });

  it('takes a job never seen out only after two beats without it: one beat may have been composed before the worker took it in', () => {
    const jobs = new InFlightJobs();
    jobs.fetched('j1', A);
    expect(jobs.beat(A, beat())).toEqual([]);
    expect(jobs.size).toBe(1);
    expect(jobs.beat(A, beat())).toEqual(['j1']);
  });

  it('keeps a job seen late: a miss then a sighting starts over', () => {
    const jobs = new InFlightJobs();
    jobs.fetched('j1', A);
    jobs.beat(A, beat());
    jobs.beat(A, beat('j1'));
    expect(jobs.beat(A, beat('j1'))).toEqual([]);
    expect(jobs.beat(A, beat())).toEqual(['j1']);
  });

  it('reads only the beats of the process that fetched the job', () => {
    const jobs = new InFlightJobs();
    jobs.fetched('j1', A);
    jobs.fetched('j2', B);
    expect(jobs.beat(B, beat())).toEqual([]);
    expect(jobs.beat(B, beat())).toEqual(['j2']);
    expect(jobs.size).toBe(1);
    expect([...jobs.processes()]).toEqual([A]);
  });

  it('tracks a job fetched again (a retry keeps its jid) only under its last fetch', () => {
    const jobs = new InFlightJobs();
    jobs.fetched('j1', A);
    jobs.beat(A, beat('j1'));
    jobs.fetched('j1', B);
    expect(jobs.size).toBe(1);
    expect([...jobs.processes()]).toEqual([B]);
    expect(jobs.beat(A, beat())).toEqual([]);
    expect(jobs.beat(B, beat())).toEqual([]);
    expect(jobs.beat(B, beat())).toEqual(['j1']);
    expect(jobs.ended(A)).toEqual([]);
  });

  it('gives the jobs of an ended process, and of every process at once', () => {
    const jobs = new InFlightJobs();
    jobs.fetched('j1', A);
    jobs.fetched('j2', B);
    jobs.fetched('j3', A);
    expect(jobs.ended(A)).toEqual(['j1', 'j3']);
    expect(jobs.clear()).toEqual(['j2']);
    expect(jobs.size).toBe(0);
  });

  it('names the process of a Sidekiq identity without its nonce', () => {
    expect(processOfIdentity('worker-7f9c:7:0123456789ab')).toBe('worker-7f9c:7');
    expect(processOfIdentity('ip-10-0-0-1.ec2.internal:1:abc')).toBe('ip-10-0-0-1.ec2.internal:1');
    expect(processOfIdentity('no-pid')).toBeUndefined();
  });
});
