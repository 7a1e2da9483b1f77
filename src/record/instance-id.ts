// The default instance id: unique per container on one host, and the same again when that container
// restarts, so that a restart after a kill finds its own record. The pod (POD_NAME) or host name alone is
// not enough: containers with host networking share the host's name, and the containers of a pod share
// the pod's.

/**
 * `<pod or host>/<container>`: the container's name under Kubernetes (from the kubelet's mount of its
 * termination log), else the first 12 characters of its id (Docker, containerd, Podman mount /etc/hostname
 * from a directory named after it) when the host name is not that id already; else the name alone.
 */
export function defaultInstanceId(
  env: Readonly<Record<string, string | undefined>>,
  hostname: string,
  mountinfo: string,
): string {
  const name = env.POD_NAME !== undefined && env.POD_NAME !== '' ? env.POD_NAME : hostname;
  const container = kubernetesContainer(mountinfo) ?? containerId(mountinfo)?.slice(0, 12);
  if (container === undefined || name === container || name.startsWith(container)) return name;
  return `${name}/${container}`;
}

/** Mount roots of /proc/self/mountinfo (the fourth field), with their mount points. */
function mounts(mountinfo: string): { root: string; point: string }[] {
  return mountinfo.split('\n').flatMap((line) => {
    const [, , , root, point] = line.split(' ');
    return root === undefined || point === undefined ? [] : [{ root, point }];
  });
}

function kubernetesContainer(mountinfo: string): string | undefined {
  for (const { root } of mounts(mountinfo)) {
    const match = /\/pods\/[^/]+\/containers\/([^/]+)\//.exec(root);
    if (match?.[1] !== undefined) return match[1];
  }
  return undefined;
}

function containerId(mountinfo: string): string | undefined {
  for (const { root, point } of mounts(mountinfo)) {
    if (point !== '/etc/hostname') continue;
    const match = /\/([0-9a-f]{64})\//.exec(root);
    if (match?.[1] !== undefined) return match[1];
  }
  return undefined;
}
