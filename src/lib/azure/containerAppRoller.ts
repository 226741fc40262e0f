import { ContainerAppsAPIClient } from '@azure/arm-appcontainers';
import type { TokenCredential } from '@azure/core-auth';
import { DependencyError } from '../core/errors';
import { type Clock, systemClock } from '../ports/clock';
import type { Consumer, ConsumerRoller, RollContext, RollHandle, RollStatus } from '../ports/consumers';
import {
  type ArmAdapterOptions,
  armClientOptions,
  armError,
  ClientsBySubscription,
  parseArmId,
} from './armKeys';
import { checkHandle, HealthProbe, handleOf, targetOf, verified } from './consumerRollers';

const NAMESPACE = 'Microsoft.App';

/**
 * Rolls a Container App by restarting its active revision (`@azure/arm-appcontainers`): its
 * replicas restart and read the secret's current version. Progress is the revision's
 * `runningState`: `Running` (and not `Unhealthy`) is done, `Failed` / `Degraded` / `Stopped` is a
 * failure, anything else is still running. A revision that has not yet left `Running` right after
 * the restart reads as done: give the consumer a `healthUrl` that reports its `secretVersions` to
 * close that gap.
 */
export class ContainerAppRoller implements ConsumerRoller {
  readonly kind = 'containerApp' as const;
  private readonly clients: ClientsBySubscription<ContainerAppsAPIClient>;
  private readonly clock: Clock;
  private readonly health: HealthProbe;

  constructor(
    credential: TokenCredential,
    options: ArmAdapterOptions & { clock?: Clock; healthClient?: ArmAdapterOptions['httpClient'] } = {},
  ) {
    this.clients = new ClientsBySubscription(
      (sub) => new ContainerAppsAPIClient(credential, sub, armClientOptions(options)),
    );
    this.clock = options.clock ?? systemClock;
    this.health = new HealthProbe(options.healthClient);
  }

  private target(consumer: Consumer) {
    const target = targetOf(consumer, 'containerApp');
    const id = parseArmId(target.appId, NAMESPACE, [['containerapps']]);
    return { id, app: id.names[0]!, appId: target.appId };
  }

  /**
   * Reads the app's active revision and restarts it. Needs `Microsoft.App/containerApps/read` and
   * `Microsoft.App/containerApps/revisions/restart/action`. Two ARM calls.
   */
  async start(consumer: Consumer, context: RollContext = {}): Promise<RollHandle> {
    const t = this.target(consumer);
    const client = this.clients.get(t.id.subscriptionId);
    let revision: string | undefined;
    try {
      const app = await client.containerApps.get(t.id.resourceGroup, t.app, {
        abortSignal: context.abortSignal,
      });
      revision = app.latestReadyRevisionName ?? app.latestRevisionName;
      if (!revision) {
        throw new DependencyError(`container app ${t.app} has no active revision to restart`, {
          retryable: false,
          metadata: { target: t.appId },
        });
      }
      await client.containerAppsRevisions.restartRevision(t.id.resourceGroup, t.app, revision, {
        abortSignal: context.abortSignal,
      });
    } catch (error) {
      throw armError(
        error,
        `restarting ${revision ? `revision ${revision} of ` : ''}container app ${t.app}`,
        t.appId,
      );
    }
    return handleOf(this.kind, consumer, this.clock, { revision });
  }

  /** Reads the restarted revision. Needs `Microsoft.App/containerApps/revisions/read`. One ARM call (plus the health check). */
  async status(consumer: Consumer, handle: RollHandle, context: RollContext = {}): Promise<RollStatus> {
    const t = this.target(consumer);
    checkHandle(handle, this.kind, consumer, ['revision']);
    let revision: Awaited<ReturnType<ContainerAppsAPIClient['containerAppsRevisions']['getRevision']>>;
    try {
      revision = await this.clients
        .get(t.id.subscriptionId)
        .containerAppsRevisions.getRevision(t.id.resourceGroup, t.app, handle.ref.revision!, {
          abortSignal: context.abortSignal,
        });
    } catch (error) {
      throw armError(error, `reading revision ${handle.ref.revision} of container app ${t.app}`, t.appId);
    }
    const running = revision.runningState;
    if (running === 'Failed' || running === 'Degraded' || running === 'Stopped') {
      return {
        state: 'failed',
        reason: `revision ${handle.ref.revision} is ${running}${revision.provisioningError ? `: ${revision.provisioningError}` : ''}`,
      };
    }
    if (running !== 'Running' || revision.healthState === 'Unhealthy') {
      return { state: 'running', detail: `revision ${handle.ref.revision} is ${running ?? 'unknown'}` };
    }
    return verified(this.health, consumer, context, `revision ${handle.ref.revision} is Running`);
  }
}
