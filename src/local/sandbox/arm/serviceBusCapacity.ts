/**
 * Service Bus namespace SKUs and premium messaging units: what `GET .../namespaces/{ns}` says about
 * them and the namespace `PATCH` that changes the units (`Namespaces_Update`, test/fixtures/rest/
 * servicebus/SBNameSpaceUpdate.json and SBNameSpaceCreate.json for the premium shape).
 *
 * - The namespace answers `sku: { name, tier, capacity? }` (capacity on premium only) and, on premium,
 *   `properties.premiumMessagingPartitions` (api-version 2022-10-01-preview and later).
 * - `PATCH { sku: { name: Premium, tier: Premium, capacity } }` is synchronous: 200 with the
 *   namespace, its `provisioningState` `Updating` (as the published sample answers) for
 *   `UPDATE_MS` of the sandbox clock while the units change, then `Succeeded`.
 * - Premium messaging units are 1, 2, 4, 8 or 16 per partition (a partitioned namespace takes
 *   multiples of its partitions). Another value is a 400 `BadRequest`, a change while one is still
 *   applied a 409 `Conflict`, and a tier change is not emulated (501): those words are the sandbox's.
 */
import { azureError, type SandboxReply } from '../http';
import { notEmulated } from './emulator';

/** How long a messaging-unit change keeps the namespace `Updating` on the sandbox clock. */
export const UPDATE_MS = 5 * 60_000;
export const MESSAGING_UNITS = [1, 2, 4, 8, 16] as const;

export interface NamespaceSku {
  tier: 'Basic' | 'Standard' | 'Premium';
  /** Premium messaging units (0 on other tiers). */
  capacity: number;
  /** Premium messaging partitions (1, 2 or 4). */
  partitions: number;
  /** Sandbox epoch ms until which a change is being applied. */
  updatingUntil: number | undefined;
}

export interface SkuSpec {
  tier: 'Basic' | 'Standard' | 'Premium';
  capacity?: number;
  partitions?: number;
}

/** The SKU of a namespace from its scenario spec (Standard when none is given, as before). */
export function skuOf(spec: SkuSpec | undefined): NamespaceSku {
  if (spec?.tier !== 'Premium')
    return { tier: spec?.tier ?? 'Standard', capacity: 0, partitions: 1, updatingUntil: undefined };
  const partitions = spec.partitions ?? 1;
  return { tier: 'Premium', capacity: spec.capacity ?? partitions, partitions, updatingUntil: undefined };
}

/** The messaging units a premium namespace takes. */
export function allowedUnits(sku: NamespaceSku): number[] {
  return MESSAGING_UNITS.map((u) => u * sku.partitions);
}

/** Validates a scenario's `sku` (raw), pushing problems with their path. */
export function resolveSku(raw: unknown, path: string, problems: string[]): SkuSpec | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push(`${path}: must be a mapping { tier, capacity?, partitions? }`);
    return undefined;
  }
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r))
    if (!['tier', 'capacity', 'partitions'].includes(k))
      problems.push(`${path}.${k}: unknown key (expected one of tier, capacity, partitions)`);
  if (r.tier !== 'Basic' && r.tier !== 'Standard' && r.tier !== 'Premium') {
    problems.push(`${path}.tier: one of Basic, Standard, Premium`);
    return undefined;
  }
  if (r.tier !== 'Premium') {
    if (r.capacity !== undefined || r.partitions !== undefined)
      problems.push(`${path}: capacity and partitions apply to Premium namespaces only`);
    return { tier: r.tier };
  }
  const partitions = r.partitions ?? 1;
  if (partitions !== 1 && partitions !== 2 && partitions !== 4) {
    problems.push(`${path}.partitions: 1, 2 or 4`);
    return undefined;
  }
  const capacity = r.capacity ?? partitions;
  if (typeof capacity !== 'number' || !MESSAGING_UNITS.some((u) => u * partitions === capacity)) {
    problems.push(
      `${path}.capacity: one of ${MESSAGING_UNITS.map((u) => u * partitions).join(', ')} (1, 2, 4, 8, 16 per partition)`,
    );
    return undefined;
  }
  return { tier: 'Premium', capacity, partitions };
}

/** The SKU part of a namespace's answer, and its provisioning state at `now`. */
export function skuBody(sku: NamespaceSku, now: number) {
  const updating = sku.updatingUntil !== undefined && now < sku.updatingUntil;
  return {
    sku:
      sku.tier === 'Premium'
        ? { name: 'Premium', tier: 'Premium', capacity: sku.capacity }
        : { name: sku.tier, tier: sku.tier },
    provisioningState: updating ? 'Updating' : 'Succeeded',
    ...(sku.tier === 'Premium' ? { premiumMessagingPartitions: sku.partitions } : {}),
  };
}

/**
 * Applies a namespace PATCH to `sku`: only a premium capacity change is emulated. Returns an error
 * reply, or undefined when the change was applied (the caller answers 200 with the namespace).
 */
export function patchSku(
  method: string,
  path: string,
  body: unknown,
  sku: NamespaceSku,
  namespace: string,
  now: number,
): SandboxReply | undefined {
  const patch = body as { sku?: { name?: unknown; tier?: unknown; capacity?: unknown } } | undefined;
  const wanted = patch?.sku;
  const other = Object.keys((body as object | undefined) ?? {}).filter(
    (k) => k !== 'sku' && k !== 'location',
  );
  if (!wanted || other.length > 0)
    return notEmulated(
      method,
      path,
      'namespace updates other than the premium messaging units (sku.capacity)',
    );
  const tier = wanted.tier ?? wanted.name;
  if (tier !== sku.tier || (wanted.name !== undefined && wanted.name !== sku.tier))
    return notEmulated(method, path, `changing the namespace tier (${sku.tier} to ${String(tier)})`);
  if (sku.tier !== 'Premium')
    return azureError(
      400,
      'BadRequest',
      `Messaging units apply to Premium namespaces only: ${namespace} is ${sku.tier}.`,
    );
  if (sku.updatingUntil !== undefined && now < sku.updatingUntil)
    return azureError(
      409,
      'Conflict',
      `Namespace ${namespace} is being updated (provisioningState Updating): retry once the earlier change is applied.`,
    );
  const capacity = wanted.capacity;
  if (typeof capacity !== 'number' || !allowedUnits(sku).includes(capacity))
    return azureError(
      400,
      'BadRequest',
      `The capacity ${String(capacity)} is not valid for premium namespace ${namespace} with ${sku.partitions} partition(s): use ${allowedUnits(sku).join(', ')}.`,
    );
  if (capacity !== sku.capacity) {
    sku.capacity = capacity;
    sku.updatingUntil = now + UPDATE_MS;
  }
  return undefined;
}
