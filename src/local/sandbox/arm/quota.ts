/**
 * The Quota API (`Microsoft.Quota`), an extension resource provider: usages and limits of another
 * provider's quotas at a location scope, `/subscriptions/{sub}/providers/{provider}/locations/{loc}`.
 * Shapes as azure-rest-api-specs quota 2023-02-01 (`Usages_List_Quotas_List_Usages_For_Compute.json`,
 * `Usages_Get_Quotas_Usages_Request_For_Compute.json`, `Quota_Get_Quotas_Get_Request_For_Compute.json`
 * in test/fixtures/rest/quota); `@azure/arm-quota` 1.1.1 sends api-version 2025-03-01, same shapes:
 *
 * - `GET {scope}/providers/Microsoft.Quota/usages` and `.../usages/{name}`: `{ id, name, type:
 *   "Microsoft.Quota/Usages", properties: { name: { value, localizedValue }, isQuotaApplicable, unit,
 *   usages: { usagesType: "Individual", value } } }` (a list as `{ value: [...], nextLink: "" }`);
 * - `GET {scope}/providers/Microsoft.Quota/quotas` and `.../quotas/{name}`: the same with `limit: {
 *   limitObjectType: "LimitValue", limitType: "Independent", value }` instead of `usages`.
 *
 * `isQuotaApplicable` says whether an increase can be requested through the API (the published list
 * example has `availabilitySets` with `false`). A name the scope does not have answers 400
 * `InvalidResourceName`, "Name {name} is not valid resource name." (the words azure-cli#28074 shows;
 * the status is not verified). A scope the scenario names no quota for lists nothing.
 */
import { azureError, type SandboxReply } from '../http';
import { type ArmProvider, type ArmProviderPathRequest, notEmulated } from './emulator';
import { normalizeLocation } from './resourceId';
import type { ResolvedQuota } from './scenario';

export const QUOTA_NAMESPACE = 'Microsoft.Quota';

export class QuotaProvider implements ArmProvider {
  readonly namespace = QUOTA_NAMESPACE;
  readonly types = [] as const;

  constructor(
    private readonly subscriptionId: string,
    private readonly quotas: ResolvedQuota[],
  ) {}

  lookup(): undefined {
    return undefined;
  }

  handle(): SandboxReply {
    return azureError(501, 'NotImplemented', 'Microsoft.Quota has no resources in resource groups.');
  }

  /** Usages and quotas of the quotas the scenario names, per provider and location. */
  all(): ResolvedQuota[] {
    return this.quotas.slice();
  }

  handleProviderPath(req: ArmProviderPathRequest): SandboxReply {
    const scope = req.path.scope?.split('/') ?? [];
    // subscriptions/{sub}/providers/{provider}/locations/{location}
    const [subs, , providers, provider, locations, location, ...extra] = scope;
    if (
      req.path.subscriptionId === undefined ||
      subs?.toLowerCase() !== 'subscriptions' ||
      providers?.toLowerCase() !== 'providers' ||
      provider === undefined ||
      locations?.toLowerCase() !== 'locations' ||
      location === undefined ||
      extra.length > 0
    ) {
      return notEmulated(
        req.method,
        req.url.pathname,
        'Microsoft.Quota outside a /subscriptions/{sub}/providers/{provider}/locations/{location} scope',
      );
    }
    const [collection, name, ...rest] = req.path.segments;
    const kind = collection?.toLowerCase();
    if ((kind !== 'usages' && kind !== 'quotas') || rest.length > 0) {
      return notEmulated(
        req.method,
        req.url.pathname,
        'Microsoft.Quota collections other than usages and quotas',
      );
    }
    if (req.method !== 'GET') return notEmulated(req.method, req.url.pathname, 'quota requests (writes)');
    const inScope = this.quotas.filter(
      (q) =>
        q.provider.toLowerCase() === provider.toLowerCase() &&
        normalizeLocation(q.location) === normalizeLocation(location),
    );
    const scopeText = `/subscriptions/${this.subscriptionId}/providers/${provider}/locations/${location}`;
    const shape = (q: ResolvedQuota) => ({
      id: `${scopeText}/providers/${QUOTA_NAMESPACE}/${kind === 'usages' ? 'Usages' : 'Quotas'}/${q.name}`,
      name: q.name,
      type: `${QUOTA_NAMESPACE}/${kind === 'usages' ? 'Usages' : 'Quotas'}`,
      properties: {
        name: { localizedValue: q.displayName, value: q.name },
        isQuotaApplicable: q.adjustable,
        unit: q.unit,
        ...(kind === 'usages'
          ? { usages: { usagesType: 'Individual', value: q.usage } }
          : { limit: { limitObjectType: 'LimitValue', limitType: 'Independent', value: q.limit } }),
      },
    });
    if (name === undefined) return { status: 200, body: { nextLink: '', value: inScope.map(shape) } };
    const found = inScope.find((q) => q.name.toLowerCase() === name.toLowerCase());
    if (!found) return azureError(400, 'InvalidResourceName', `Name ${name} is not valid resource name.`);
    return { status: 200, body: shape(found) };
  }
}
