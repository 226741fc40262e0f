import { AzureQuotaExtensionAPI } from '@azure/arm-quota';
import type { TokenCredential } from '@azure/core-auth';
import { ValidationError } from '../core/errors';
import type { CallOptions, QuotaReader, QuotaScope, QuotaView } from '../ports/inventory';
import { type ArmAdapterOptions, armClientOptions, armError } from './armKeys';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PROVIDER = /^[A-Za-z][A-Za-z0-9]*\.[A-Za-z][A-Za-z0-9.]*$/;
const REGION = /^[a-z][a-z0-9]{1,39}$/;
/** Pages read per list at most: a scope has a few hundred quotas, never thousands. */
const MAX_ITEMS = 5000;

/**
 * `QuotaReader` over `@azure/arm-quota` (the Quota API, an extension of the provider's location
 * scope `subscriptions/{sub}/providers/{provider}/locations/{location}`): usages
 * (`Microsoft.Quota/usages/read`) and limits (`Microsoft.Quota/quotas/read`), joined by quota name.
 * Both actions are granted at the subscription scope. SDK errors become the project's (`fromAzureError`).
 */
export class AzureQuotaReader implements QuotaReader {
  private readonly client: AzureQuotaExtensionAPI;

  constructor(credential: TokenCredential, options: ArmAdapterOptions = {}) {
    this.client = new AzureQuotaExtensionAPI(credential, armClientOptions(options));
  }

  async listQuotas(scope: QuotaScope, options: CallOptions = {}): Promise<QuotaView[]> {
    const problems: string[] = [];
    if (!GUID.test(scope.subscriptionId)) problems.push('subscriptionId: a subscription id (GUID)');
    if (!PROVIDER.test(scope.provider))
      problems.push('provider: a resource provider such as Microsoft.Compute');
    if (!REGION.test(scope.location)) problems.push('location: a region name such as westeurope');
    if (problems.length > 0) throw new ValidationError(`quota scope: ${problems.join('; ')}`, problems);
    const path = `subscriptions/${scope.subscriptionId}/providers/${scope.provider}/locations/${scope.location}`;
    const what = `${scope.provider} quotas in ${scope.location}`;
    const byName = new Map<string, QuotaView>();
    const entry = (name: string): QuotaView => {
      const key = name.toLowerCase();
      let view = byName.get(key);
      if (!view) {
        view = {
          name,
          displayName: undefined,
          usage: undefined,
          limit: undefined,
          unit: undefined,
          adjustable: undefined,
        };
        byName.set(key, view);
      }
      return view;
    };
    try {
      let count = 0;
      for await (const usage of this.client.usages.list(path, { abortSignal: options.abortSignal })) {
        if (++count > MAX_ITEMS) break;
        const name = usage.properties?.name?.value ?? usage.name;
        if (!name) continue;
        const view = entry(name);
        view.displayName ??= usage.properties?.name?.localizedValue;
        view.unit ??= usage.properties?.unit;
        view.adjustable ??= usage.properties?.isQuotaApplicable;
        const value = usage.properties?.usages?.value;
        if (typeof value === 'number' && Number.isFinite(value)) view.usage = value;
      }
      count = 0;
      for await (const quota of this.client.quota.list(path, { abortSignal: options.abortSignal })) {
        if (++count > MAX_ITEMS) break;
        const name = quota.properties?.name?.value ?? quota.name;
        if (!name) continue;
        const view = entry(name);
        view.displayName ??= quota.properties?.name?.localizedValue;
        view.unit ??= quota.properties?.unit;
        view.adjustable ??= quota.properties?.isQuotaApplicable;
        const limit = quota.properties?.limit as { value?: unknown } | undefined;
        if (typeof limit?.value === 'number' && Number.isFinite(limit.value)) view.limit = limit.value;
      }
    } catch (error) {
      throw armError(error, `reading ${what}`, path);
    }
    return [...byName.values()];
  }
}
