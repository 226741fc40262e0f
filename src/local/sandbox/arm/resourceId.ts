/**
 * Azure Resource Manager paths, parsed the way ARM reads them: keywords (`subscriptions`,
 * `resourceGroups`, `providers`) and names compare case-insensitively (ARM answers
 * `/subscriptions/x/resourcegroups/RG/...` as it answers `/resourceGroups/rg/...`, and hands back
 * `location` headers in either case), segments are percent-decoded.
 */

/** One `type/name` pair after the provider namespace (`databaseAccounts/acct`, `authorizationRules/rule`). */
export interface ArmTypeName {
  type: string;
  name: string;
}

/** What an ARM path addresses. */
export type ArmPath =
  | { kind: 'subscription'; subscriptionId: string }
  | { kind: 'resourceGroup'; subscriptionId: string; resourceGroup: string }
  | {
      kind: 'resource';
      subscriptionId: string;
      resourceGroup: string;
      namespace: string;
      /** At least one pair; the first is the top-level resource. */
      chain: ArmTypeName[];
      /** A trailing single segment (`listKeys`, `regenerateKey`, `restart`), if any. */
      action: string | undefined;
    }
  | {
      /** `/subscriptions/{sub}/providers/{ns}/locations/{loc}/{operationsStatus|operationResults}/{id}`. */
      kind: 'operation';
      subscriptionId: string;
      namespace: string;
      location: string;
      collection: string;
      operationId: string;
    }
  | { kind: 'unknown'; reason: string };

const eq = (a: string | undefined, b: string) => a !== undefined && a.toLowerCase() === b.toLowerCase();

/** Parses a request path (`URL.pathname`). Never throws: a malformed path is `{ kind: 'unknown' }`. */
export function parseArmPath(pathname: string): ArmPath {
  let segments: string[];
  try {
    segments = pathname
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
  } catch {
    return { kind: 'unknown', reason: 'the path is not validly percent-encoded' };
  }
  if (!eq(segments[0], 'subscriptions') || segments[1] === undefined) {
    return { kind: 'unknown', reason: 'the path does not start with /subscriptions/{subscriptionId}' };
  }
  const subscriptionId = segments[1];
  if (segments.length === 2) return { kind: 'subscription', subscriptionId };
  if (eq(segments[2], 'providers')) {
    const [, , , namespace, locations, location, collection, operationId, ...rest] = segments;
    if (
      namespace !== undefined &&
      eq(locations, 'locations') &&
      location !== undefined &&
      collection !== undefined &&
      operationId !== undefined &&
      rest.length === 0
    ) {
      return { kind: 'operation', subscriptionId, namespace, location, collection, operationId };
    }
    return { kind: 'unknown', reason: 'subscription-level provider paths other than operations' };
  }
  if (!eq(segments[2], 'resourceGroups') || segments[3] === undefined) {
    return { kind: 'unknown', reason: 'expected /resourceGroups/{resourceGroupName} after the subscription' };
  }
  const resourceGroup = segments[3];
  if (segments.length === 4) return { kind: 'resourceGroup', subscriptionId, resourceGroup };
  if (!eq(segments[4], 'providers') || segments[5] === undefined || segments.length < 8) {
    return {
      kind: 'unknown',
      reason: 'expected /providers/{namespace}/{type}/{name} after the resource group',
    };
  }
  const namespace = segments[5];
  const tail = segments.slice(6);
  const chain: ArmTypeName[] = [];
  for (let i = 0; i + 1 < tail.length; i += 2) chain.push({ type: tail[i]!, name: tail[i + 1]! });
  const action = tail.length % 2 === 1 ? tail[tail.length - 1] : undefined;
  return { kind: 'resource', subscriptionId, resourceGroup, namespace, chain, action };
}

/** The canonical id of a resource: `/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/...]`. */
export function resourceIdOf(
  subscriptionId: string,
  resourceGroup: string,
  namespace: string,
  chain: ArmTypeName[],
): string {
  const tail = chain.map((p) => `${p.type}/${p.name}`).join('/');
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/${namespace}/${tail}`;
}

/** Lower-case key of a chain of types (`databaseaccounts`, `namespaces/queues/authorizationrules`). */
export function typeKey(chain: ArmTypeName[]): string {
  return chain.map((p) => p.type.toLowerCase()).join('/');
}

/** `West Europe` -> `westeurope`, as ARM writes locations in operation URLs. */
export function normalizeLocation(location: string): string {
  return location.replace(/\s+/g, '').toLowerCase();
}
