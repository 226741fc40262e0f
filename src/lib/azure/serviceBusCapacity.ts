import { ServiceBusManagementClient } from '@azure/arm-servicebus';
import type { TokenCredential } from '@azure/core-auth';
import { ValidationError } from '../core/errors';
import type { CapacityCallOptions, NamespaceCapacity, ServiceBusCapacityPort } from '../ports/capacity';
import {
  type ArmAdapterOptions,
  armClientOptions,
  armError,
  ClientsBySubscription,
  parseArmId,
} from './armKeys';

const NAMESPACE = 'Microsoft.ServiceBus';
/**
 * `@azure/arm-servicebus` 6.1.0 speaks 2021-11-01, which predates partitioned premium namespaces:
 * its answers would not say how many partitions a namespace has, and the allowed messaging units
 * depend on it. The adapter asks for 2024-01-01 (the stable version of test/fixtures/rest/servicebus)
 * and reads `premiumMessagingPartitions` and `provisioningState` from the answer's text, which the SDK's
 * model drops or moves.
 */
export const SERVICE_BUS_API_VERSION = '2024-01-01';

interface RawNamespace {
  sku?: { name?: string; tier?: string; capacity?: number };
  properties?: { provisioningState?: string; premiumMessagingPartitions?: number };
}

/** The answer as the service wrote it: the SDK's parsed body is already mapped onto its (older) model. */
function rawOf(response: { bodyAsText?: string | null }): RawNamespace | undefined {
  try {
    return response.bodyAsText ? (JSON.parse(response.bodyAsText) as RawNamespace) : undefined;
  } catch {
    return undefined;
  }
}

function capacityOf(raw: RawNamespace | undefined, what: string): NamespaceCapacity {
  const tier = raw?.sku?.tier ?? raw?.sku?.name;
  if (tier !== 'Basic' && tier !== 'Standard' && tier !== 'Premium')
    throw new ValidationError(`${what}: the answer has no known SKU`, ['sku: missing or unknown']);
  const partitions = raw?.properties?.premiumMessagingPartitions;
  return {
    sku: tier,
    capacity: tier === 'Premium' ? (raw?.sku?.capacity ?? 1) : 0,
    partitions: typeof partitions === 'number' && partitions >= 1 ? partitions : 1,
    provisioningState: raw?.properties?.provisioningState ?? 'Unknown',
  };
}

/**
 * `ServiceBusCapacityPort` over `@azure/arm-servicebus`: a premium namespace's messaging units
 * (`sku.capacity`). Permissions: `Microsoft.ServiceBus/namespaces/read` and
 * `Microsoft.ServiceBus/namespaces/write` on the namespace (a custom role with exactly these:
 * docs/deploy.md, "An alert playbook"). The update is the namespace PATCH `{ sku: { name: Premium, tier: Premium, capacity } }`,
 * answered at once (200, `provisioningState: Updating`) while the service applies it: the namespace's
 * `provisioningState` says when it is done. ARM calls: one GET per read, one PATCH per change.
 */
export class ServiceBusCapacityAdapter implements ServiceBusCapacityPort {
  private readonly clients: ClientsBySubscription<ServiceBusManagementClient>;

  constructor(credential: TokenCredential, options: ArmAdapterOptions = {}) {
    this.clients = new ClientsBySubscription(
      (sub) =>
        new ServiceBusManagementClient(credential, sub, {
          ...armClientOptions(options),
          apiVersion: SERVICE_BUS_API_VERSION,
        }),
    );
  }

  private parse(namespaceId: string) {
    const id = parseArmId(namespaceId, NAMESPACE, [['namespaces']]);
    const name = id.names[0]!;
    return {
      client: this.clients.get(id.subscriptionId),
      rg: id.resourceGroup,
      name,
      what: `Service Bus namespace ${name}`,
    };
  }

  async read(namespaceId: string, options: CapacityCallOptions = {}): Promise<NamespaceCapacity> {
    const { client, rg, name, what } = this.parse(namespaceId);
    let raw: RawNamespace | undefined;
    try {
      await client.namespaces.get(rg, name, {
        abortSignal: options.abortSignal,
        onResponse: (response) => {
          raw = rawOf(response);
        },
      });
    } catch (error) {
      throw armError(error, `reading ${what}`, namespaceId);
    }
    return capacityOf(raw, what);
  }

  async setCapacity(
    namespaceId: string,
    capacity: number,
    options: CapacityCallOptions = {},
  ): Promise<NamespaceCapacity> {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 64)
      throw new ValidationError(`messaging units ${capacity}: a whole number from 1 to 64`, [
        'capacity: 1, 2, 4, 8 or 16 per partition',
      ]);
    const { client, rg, name, what } = this.parse(namespaceId);
    let raw: RawNamespace | undefined;
    try {
      await client.namespaces.update(
        rg,
        name,
        { sku: { name: 'Premium', tier: 'Premium', capacity } },
        {
          abortSignal: options.abortSignal,
          onResponse: (response) => {
            raw = rawOf(response);
          },
        },
      );
    } catch (error) {
      throw armError(error, `setting ${what} to ${capacity} messaging units`, namespaceId);
    }
    // A 202 has no body: read what the namespace now says.
    return raw?.sku ? capacityOf(raw, what) : this.read(namespaceId, options);
  }
}
