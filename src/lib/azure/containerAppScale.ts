import { ContainerAppsAPIClient } from '@azure/arm-appcontainers';
import type { TokenCredential } from '@azure/core-auth';
import { ValidationError } from '../core/errors';
import type { CapacityCallOptions, ReplicaRange, ReplicaScalerPort } from '../ports/capacity';
import {
  type ArmAdapterOptions,
  armClientOptions,
  armError,
  ClientsBySubscription,
  parseArmId,
} from './armKeys';

const NAMESPACE = 'Microsoft.App';
/** Container Apps' default when a template sets no max (the API's documented default). */
const DEFAULT_MAX_REPLICAS = 10;

/**
 * `ReplicaScalerPort` over `@azure/arm-appcontainers`: a Container App's replica range
 * (`template.scale`). Permissions: `Microsoft.App/containerApps/read` and
 * `Microsoft.App/containerApps/write` on the app, and `Microsoft.App/locations/containerappOperationStatuses/read`
 * and `Microsoft.App/locations/containerappOperationResults/read` at the subscription to follow the
 * update (Container Apps keeps its long-running operations there, outside the app); custom roles
 * with exactly these: docs/deploy.md, "An alert playbook".
 *
 * A change is the app's PATCH (JSON merge patch) `{ location, properties: { template: { scale: {
 * maxReplicas } } } }`, a long-running operation followed to its end. The scale settings are
 * revision-scope: the change creates a new revision, whose replicas start anew (they read their
 * secrets again). ARM calls: one GET per read; a change is a GET (for the location), the PATCH, its
 * status polls and the SDK's final GET, then a read back.
 */
export class ContainerAppScaleAdapter implements ReplicaScalerPort {
  private readonly clients: ClientsBySubscription<ContainerAppsAPIClient>;

  constructor(
    credential: TokenCredential,
    private readonly options: ArmAdapterOptions = {},
  ) {
    this.clients = new ClientsBySubscription(
      (sub) => new ContainerAppsAPIClient(credential, sub, armClientOptions(options)),
    );
  }

  private parse(appId: string) {
    const id = parseArmId(appId, NAMESPACE, [['containerapps']]);
    const name = id.names[0]!;
    return {
      client: this.clients.get(id.subscriptionId),
      rg: id.resourceGroup,
      name,
      what: `Container App ${name}`,
    };
  }

  private async get(appId: string, options: CapacityCallOptions) {
    const { client, rg, name, what } = this.parse(appId);
    try {
      return await client.containerApps.get(rg, name, { abortSignal: options.abortSignal });
    } catch (error) {
      throw armError(error, `reading ${what}`, appId);
    }
  }

  async read(appId: string, options: CapacityCallOptions = {}): Promise<ReplicaRange> {
    const app = await this.get(appId, options);
    return {
      minReplicas: app.template?.scale?.minReplicas ?? 0,
      maxReplicas: app.template?.scale?.maxReplicas ?? DEFAULT_MAX_REPLICAS,
      provisioningState: app.provisioningState ?? 'Unknown',
      latestRevision: app.latestRevisionName,
    };
  }

  async setMaxReplicas(
    appId: string,
    maxReplicas: number,
    options: CapacityCallOptions = {},
  ): Promise<ReplicaRange> {
    if (!Number.isInteger(maxReplicas) || maxReplicas < 1 || maxReplicas > 1000)
      throw new ValidationError(`max replicas ${maxReplicas}: a whole number from 1 to 1000`, [
        'maxReplicas: 1 to 1000',
      ]);
    const { client, rg, name, what } = this.parse(appId);
    const app = await this.get(appId, options);
    try {
      await client.containerApps.update(
        rg,
        name,
        { location: app.location, template: { scale: { maxReplicas } } },
        { abortSignal: options.abortSignal, updateIntervalInMs: this.options.pollIntervalMs ?? 2000 },
      );
    } catch (error) {
      throw armError(error, `setting the max replicas of ${what} to ${maxReplicas}`, appId);
    }
    return this.read(appId, options);
  }
}
