import { beforeEach, describe, expect, it } from 'vitest';
import { SuspensionWatch } from '../../src/process/suspension.js';
import { captureLogger } from '../helpers/fake.js';

let suspended: boolean;
let resumes: number;

function watch(jobControl: boolean) {
  const { log, records } = captureLogger();
  const worker = {
    isSuspended: () => suspended,
    resume: () => {
      resumes++;
      suspended = false;
    },
  };
  return {
    watch: new SuspensionWatch(worker, log, jobControl),
    messages: () => records.map((record) => String(record.msg)),
  };
}

beforeEach(() => {
  suspended = false;
  resumes = 0;
});

describe('SuspensionWatch', () => {
  it('resumes a suspended worker and says so each time', () => {
    const { watch: subject, messages } = watch(false);
    subject.check();
    expect(resumes).toBe(0);
    suspended = true;
    subject.check();
    expect(resumes).toBe(1);
    subject.check();
    suspended = true;
    subject.check();
    expect(resumes).toBe(2);
    expect(messages().filter((message) => message.includes('resumed it with SIGCONT'))).toHaveLength(2);
  });

  it('leaves a suspension alone with --job-control, saying so once', () => {
    const { watch: subject, messages } = watch(true);
    suspended = true;
    subject.check();
    subject.check();
    expect(resumes).toBe(0);
    expect(messages().filter((message) => message.includes('left suspended'))).toHaveLength(1);
    suspended = false;
    subject.check();
    suspended = true;
    subject.check();
    expect(messages().filter((message) => message.includes('left suspended'))).toHaveLength(2);
  });

  it('ends a suspension under way, and every later one, once a stop begins, --job-control or not', () => {
    const { watch: subject } = watch(true);
    suspended = true;
    subject.check();
    subject.keepRunning();
    expect(resumes).toBe(1);
    suspended = true;
    subject.check();
    expect(resumes).toBe(2);
  });

  it('sends nothing when a stop begins and the worker runs', () => {
    const { watch: subject, messages } = watch(true);
    subject.keepRunning();
    expect(resumes).toBe(0);
    expect(messages()).toEqual([]);
  });
});
