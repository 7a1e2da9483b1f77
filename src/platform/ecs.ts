// The container's stop timeout as the ECS task metadata endpoint (v4) gives it: GET of
// ${ECS_CONTAINER_METADATA_URI_V4}, the container's own metadata.
import type { Clock } from '../lib/clock.js';
import { getJson } from './http.js';

/**
 * `StopTimeout` of the container metadata, in seconds, when the agent gives it. AWS's documented v4
 * response lists no such field today: ECS's own default applies then, and the log says so.
 */
export function containerStopTimeoutS(container: unknown): { seconds: number | undefined } | { reason: string } {
  if (typeof container !== 'object' || container === null || typeof (container as { Name?: unknown }).Name !== 'string')
    return { reason: 'the task metadata endpoint answered with something that is not a container' };
  const timeout = (container as { StopTimeout?: unknown }).StopTimeout;
  return { seconds: typeof timeout === 'number' && timeout >= 0 ? timeout : undefined };
}

export async function readContainerStopTimeoutS(
  metadataUri: string,
  timeoutMs: number,
  clock: Clock,
): Promise<{ seconds: number | undefined } | { reason: string }> {
  let url: URL;
  try {
    url = new URL(metadataUri);
  } catch {
    return { reason: `ECS_CONTAINER_METADATA_URI_V4 is not a URL` };
  }
  const answer = await getJson({ url, timeoutMs }, clock);
  if (!answer.ok) return { reason: `GET ${metadataUri}: ${answer.reason}` };
  return containerStopTimeoutS(answer.body);
}
