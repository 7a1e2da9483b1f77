import { describe, expect, it } from 'vitest';
import { defaultInstanceId } from '../../src/record/instance-id.js';

const ID = 'f3c1b9e27d0a4b6c8e5d2a1f0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c';
const docker = [
  `1462 1441 0:52 / / rw,relatime master:606 - overlay overlay rw,lowerdir=/x`,
  `1478 1462 8:1 /var/lib/docker/containers/${ID}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/sda1 rw`,
  `1479 1462 8:1 /var/lib/docker/containers/${ID}/hostname /etc/hostname rw,relatime - ext4 /dev/sda1 rw`,
].join('\n');
const kubernetes = [
  `2301 2290 0:310 / / rw,relatime - overlay overlay rw`,
  `2310 2301 8:1 /var/lib/kubelet/pods/6b1a2c3d-0000-4e5f-9a8b-7c6d5e4f3a2b/etc-hosts /etc/hosts rw - ext4 /dev/sda1 rw`,
  `2311 2301 8:1 /var/lib/kubelet/pods/6b1a2c3d-0000-4e5f-9a8b-7c6d5e4f3a2b/containers/worker/2f1e0d9c /dev/termination-log rw - ext4 /dev/sda1 rw`,
  `2312 2301 8:1 /var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/${ID}/hostname /etc/hostname rw - ext4 /dev/sda1 rw`,
].join('\n');

describe('the default instance id', () => {
  it("adds the container id where containers share the host's name (host networking)", () => {
    expect(defaultInstanceId({}, 'build-host', docker)).toBe(`build-host/${ID.slice(0, 12)}`);
  });

  it('is the host name alone where Docker made it the container id already', () => {
    expect(defaultInstanceId({}, ID.slice(0, 12), docker)).toBe(ID.slice(0, 12));
  });

  it("adds the container's name in a Kubernetes pod, which stays when the container restarts", () => {
    expect(defaultInstanceId({ POD_NAME: 'sidekiq-7f9c' }, 'sidekiq-7f9c', kubernetes)).toBe('sidekiq-7f9c/worker');
    expect(defaultInstanceId({}, 'sidekiq-7f9c', kubernetes)).toBe('sidekiq-7f9c/worker');
  });

  it('is the pod or host name outside a container', () => {
    expect(defaultInstanceId({}, 'laptop', '25 1 0:22 / / rw - ext4 /dev/sda1 rw')).toBe('laptop');
    expect(defaultInstanceId({ POD_NAME: 'p' }, 'laptop', '')).toBe('p');
  });
});
