import { describe, expect, it } from 'vitest';
import { oomCounterFiles, parseCgroupMounts, parseOomKills, readOomKills } from '../../src/cgroup/oom.js';

const V1_OOM_CONTROL = 'oom_kill_disable 0\nunder_oom 0\noom_kill 3\n';
const V2_MEMORY_EVENTS = 'low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n';

/** This development machine: cgroup v1 controllers plus an empty v2 hierarchy (hybrid), no cgroup namespace. */
const HYBRID_MOUNTINFO = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
].join('\n');
const HYBRID_CGROUP = '9:name=systemd:/\n4:memory:/process_api/9687\n1:cpu:/\n0::/\n';

/** A Kubernetes pod on cgroup v2 with a cgroup namespace: the container's own cgroup is the root. */
const V2_MOUNTINFO = '1180 1170 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate';
const V2_CGROUP = '0::/\n';

/** Docker on cgroup v1 without a cgroup namespace: the mount shows the container's cgroup, /proc/self/cgroup the host path. */
const DOCKER_V1_MOUNTINFO = '720 711 0:33 /docker/abc123 /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory';
const DOCKER_V1_CGROUP = '10:memory:/docker/abc123\n';

describe('parseOomKills', () => {
  it('reads oom_kill from v1 memory.oom_control and v2 memory.events', () => {
    expect(parseOomKills(V1_OOM_CONTROL)).toBe(3);
    expect(parseOomKills(V2_MEMORY_EVENTS)).toBe(2);
  });

  it('is undefined without the counter (kernels before 4.13) or for garbage', () => {
    expect(parseOomKills('oom_kill_disable 0\nunder_oom 0\n')).toBeUndefined();
    expect(parseOomKills('')).toBeUndefined();
    expect(parseOomKills('oom_kill lots')).toBeUndefined();
  });

  it('reads the oom_kill line only, not another field ending in it', () => {
    expect(parseOomKills('memcg_oom_kill 9\noom_kill 1\n')).toBe(1);
  });
});

describe('parseCgroupMounts', () => {
  it('keeps the v1 memory mounts and the v2 mounts, unescaping mount points', () => {
    const mountinfo = `${HYBRID_MOUNTINFO}\n50 31 0:40 / /mnt/with\\040space rw - cgroup2 cgroup2 rw\nnot a mountinfo line`;
    expect(parseCgroupMounts(mountinfo)).toEqual([
      { version: 1, root: '/', mountPoint: '/sys/fs/cgroup/memory' },
      { version: 2, root: '/', mountPoint: '/sys/fs/cgroup/unified' },
      { version: 2, root: '/', mountPoint: '/mnt/with space' },
    ]);
  });
});

describe('oomCounterFiles', () => {
  it('finds the memory cgroup of a hybrid host under the v1 memory mount first', () => {
    expect(oomCounterFiles(HYBRID_CGROUP, HYBRID_MOUNTINFO)).toEqual([
      '/sys/fs/cgroup/memory/process_api/9687/memory.oom_control',
      '/sys/fs/cgroup/memory/memory.oom_control',
      '/sys/fs/cgroup/unified/memory.events',
    ]);
  });

  it('reads memory.events at the root of a namespaced cgroup v2', () => {
    expect(oomCounterFiles(V2_CGROUP, V2_MOUNTINFO)).toEqual(['/sys/fs/cgroup/memory.events']);
  });

  it('maps a host path through the mount root of a container without a cgroup namespace', () => {
    expect(oomCounterFiles(DOCKER_V1_CGROUP, DOCKER_V1_MOUNTINFO)).toEqual([
      '/sys/fs/cgroup/memory/memory.oom_control',
    ]);
    expect(oomCounterFiles('10:memory:/docker/abc123/worker\n', DOCKER_V1_MOUNTINFO)).toEqual([
      '/sys/fs/cgroup/memory/worker/memory.oom_control',
      '/sys/fs/cgroup/memory/memory.oom_control',
    ]);
    expect(oomCounterFiles('10:memory:/elsewhere\n', DOCKER_V1_MOUNTINFO)).toEqual([
      '/sys/fs/cgroup/memory/memory.oom_control',
    ]);
  });

  it('finds nothing without a memory cgroup', () => {
    expect(oomCounterFiles('1:cpu:/\n', '32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu')).toEqual([]);
  });
});

describe('readOomKills', () => {
  const files =
    (contents: Record<string, string>) =>
    (path: string): string => {
      const text = contents[path];
      if (text === undefined) throw new Error(`ENOENT: ${path}`);
      return text;
    };

  it('takes the first candidate that can be read', () => {
    const read = files({
      '/proc/self/cgroup': HYBRID_CGROUP,
      '/proc/self/mountinfo': HYBRID_MOUNTINFO,
      '/sys/fs/cgroup/memory/memory.oom_control': V1_OOM_CONTROL,
    });
    expect(readOomKills(read)).toBe(3);
  });

  it('is undefined where nothing can be read', () => {
    expect(readOomKills(files({}))).toBeUndefined();
    expect(
      readOomKills(files({ '/proc/self/cgroup': V2_CGROUP, '/proc/self/mountinfo': V2_MOUNTINFO })),
    ).toBeUndefined();
  });

  it('reads this machine', () => {
    expect(readOomKills()).toEqual(expect.any(Number));
  });
});
