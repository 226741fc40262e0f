/**
 * Container Apps scale settings (`properties.template.scale`: `minReplicas`, `maxReplicas`) and the
 * app PATCH that changes them (`ContainerApps_Update`: "Patches a Container App using JSON Merge
 * Patch", a long-running operation).
 *
 * - `GET .../containerApps/{app}` carries `template.scale: { minReplicas, maxReplicas, rules: [] }`
 *   (the API's default max is 10).
 * - `PATCH { location?, properties: { template: { scale: { minReplicas?, maxReplicas? } } } }`: 202
 *   with `Azure-AsyncOperation` naming `.../providers/Microsoft.App/locations/{loc}/
 *   containerappOperationStatuses/{id}` and `Location` naming `.../containerappOperationResults/{id}`
 *   (Container Apps' own operation collections), the result being the app. Scale settings are
 *   revision-scope: the change creates a new revision (`{app}--{7 characters}`), whose replicas
 *   start anew and read their secrets again (the app's consumers roll).
 * - `maxReplicas` is 1 to 1000 and `minReplicas` 0 to `maxReplicas`: another value is a 400
 *   `ContainerAppInvalidScaleSpec` (the sandbox's wording). Other template or configuration changes
 *   are not emulated (501).
 */
import { azureError, type SandboxReply } from '../http';
import { notEmulated } from './emulator';

export const DEFAULT_MAX_REPLICAS = 10;
export const MAX_REPLICAS = 1000;

export interface ReplicaScale {
  minReplicas: number;
  maxReplicas: number;
}

/** Validates a scenario's `scale` (raw), pushing problems with their path. */
export function resolveScale(raw: unknown, path: string, problems: string[]): ReplicaScale | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push(`${path}: must be a mapping { minReplicas?, maxReplicas? }`);
    return undefined;
  }
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r))
    if (k !== 'minReplicas' && k !== 'maxReplicas')
      problems.push(`${path}.${k}: unknown key (expected minReplicas, maxReplicas)`);
  const scale = { minReplicas: r.minReplicas ?? 0, maxReplicas: r.maxReplicas ?? DEFAULT_MAX_REPLICAS };
  const problem = scaleProblem(scale);
  if (problem) {
    problems.push(`${path}: ${problem}`);
    return undefined;
  }
  return scale as ReplicaScale;
}

function scaleProblem(scale: { minReplicas: unknown; maxReplicas: unknown }): string | undefined {
  const { minReplicas: min, maxReplicas: max } = scale;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > MAX_REPLICAS)
    return `maxReplicas must be a whole number from 1 to ${MAX_REPLICAS}`;
  if (typeof min !== 'number' || !Number.isInteger(min) || min < 0 || min > max)
    return `minReplicas must be a whole number from 0 to maxReplicas (${max})`;
  return undefined;
}

/**
 * Reads a PATCH body: the new scale, or an error reply. Only `template.scale` (and `location`,
 * `tags`) may be in it.
 */
export function scaleFromPatch(
  method: string,
  path: string,
  body: unknown,
  current: ReplicaScale,
): { scale: ReplicaScale } | { reply: SandboxReply } {
  const b = (body ?? {}) as Record<string, unknown>;
  const extra = Object.keys(b).filter((k) => !['location', 'tags', 'properties'].includes(k));
  const properties = (b.properties ?? {}) as Record<string, unknown>;
  const template = (properties.template ?? {}) as Record<string, unknown>;
  const scale = template.scale as Record<string, unknown> | undefined;
  if (
    extra.length > 0 ||
    Object.keys(properties).some((k) => k !== 'template') ||
    Object.keys(template).some((k) => k !== 'scale') ||
    !scale
  )
    return { reply: notEmulated(method, path, 'container app changes other than template.scale') };
  const next = {
    minReplicas: scale.minReplicas ?? current.minReplicas,
    maxReplicas: scale.maxReplicas ?? current.maxReplicas,
  };
  const problem = scaleProblem(next);
  if (problem)
    return { reply: azureError(400, 'ContainerAppInvalidScaleSpec', `Invalid scale settings: ${problem}.`) };
  return { scale: next as ReplicaScale };
}
