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
  | {
      /**
       * A provider path that is not a resource in a resource group: a subscription-level collection
       * (`/subscriptions/{sub}/providers/{ns}/locations/{loc}/kubernetesVersions`), a tenant-level one
       * (`/providers/{ns}/databaseAccountNames/{name}`, `subscriptionId` undefined), or an extension
       * resource under such a scope (`/subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/providers/Microsoft.Quota/usages`).
       * ARM routes it to the provider of the last `providers/{namespace}`.
       */
      kind: 'providerPath';
      subscriptionId: string | undefined;
      /** The namespace that answers: the last `providers/{namespace}` of the path. */
      namespace: string;
      /** For an extension resource: the scope before `/providers/{namespace}` (`subscriptions/{sub}/providers/Microsoft.Compute/locations/westeurope`). */
      scope: string | undefined;
      /** The segments after the answering namespace (decoded). */
      segments: string[];
    }
  | { kind: 'unknown'; reason: string };

/** The collections of ARM's asynchronous operations (`ArmOperations`). */
const OPERATION_COLLECTIONS = new Set([
  'operationsstatus',
  'operationresults',
  // Container Apps names its own (`Azure-AsyncOperation` / `Location` of a container app PATCH).
  'containerappoperationstatuses',
  'containerappoperationresults',
]);

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
  if (eq(segments[0], 'providers') && segments[1] !== undefined) {
    return providerPath(undefined, segments, 0);
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
      rest.length === 0 &&
      OPERATION_COLLECTIONS.has(collection.toLowerCase())
    ) {
      return { kind: 'operation', subscriptionId, namespace, location, collection, operationId };
    }
    if (namespace === undefined) return { kind: 'unknown', reason: 'a provider namespace is missing' };
    return providerPath(subscriptionId, segments, 2);
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

/**
 * A provider path whose `providers` keyword is at `at`: routed to the last `providers/{namespace}`
 * (an extension resource's provider), the part before it being the extension's scope.
 */
function providerPath(subscriptionId: string | undefined, segments: string[], at: number): ArmPath {
  let last = at;
  for (let i = at + 2; i + 1 < segments.length; i++) if (eq(segments[i], 'providers')) last = i;
  const namespace = segments[last + 1]!;
  return {
    kind: 'providerPath',
    subscriptionId,
    namespace,
    scope: last === at ? undefined : segments.slice(0, last).join('/'),
    segments: segments.slice(last + 2),
  };
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

/** Display names of common regions (`westeurope` -> `West Europe`), as providers write them in bodies. */
const LOCATION_DISPLAY_NAMES: Record<string, string> = {
  australiaeast: 'Australia East',
  brazilsouth: 'Brazil South',
  canadacentral: 'Canada Central',
  centralindia: 'Central India',
  centralus: 'Central US',
  eastasia: 'East Asia',
  eastus: 'East US',
  eastus2: 'East US 2',
  francecentral: 'France Central',
  germanywestcentral: 'Germany West Central',
  italynorth: 'Italy North',
  japaneast: 'Japan East',
  koreacentral: 'Korea Central',
  northcentralus: 'North Central US',
  northeurope: 'North Europe',
  norwayeast: 'Norway East',
  polandcentral: 'Poland Central',
  southafricanorth: 'South Africa North',
  southcentralus: 'South Central US',
  southeastasia: 'Southeast Asia',
  spaincentral: 'Spain Central',
  swedencentral: 'Sweden Central',
  switzerlandnorth: 'Switzerland North',
  uaenorth: 'UAE North',
  uksouth: 'UK South',
  ukwest: 'UK West',
  westeurope: 'West Europe',
  westus: 'West US',
  westus2: 'West US 2',
  westus3: 'West US 3',
};

/** `westeurope` -> `West Europe` (a region the table does not know keeps its name). */
export function displayLocation(location: string): string {
  return LOCATION_DISPLAY_NAMES[normalizeLocation(location)] ?? location;
}
