/**
 * Container Apps (`Microsoft.App/containerApps`): the app, its revisions and the revision restart
 * (azure-rest-api-specs app `ContainerApps_Get`, `ContainerAppsRevisions_ListRevisions`,
 * `_GetRevision`, `_RestartRevision`).
 *
 * - `GET .../containerApps/{app}`: `properties.latestRevisionName` / `latestReadyRevisionName` (the
 *   active revision in single-revision mode, the only mode emulated), `runningStatus`;
 * - `GET .../revisions` and `GET .../revisions/{rev}`: the revision, `properties.active`,
 *   `runningState` (`Processing` while a restart rolls the replicas, `Running` after,
 *   `Degraded` with `runningStateDetails` when the new replicas never became ready), `healthState`;
 * - `POST .../revisions/{rev}/restart`: 200, no body; every consumer of the app is rolled (its new
 *   replicas read the secret's current version). An unknown revision is 404.
 *
 * The revision's name is `{app}--{7 characters}` derived from the scenario's seed.
 */
import type { SandboxReply } from '../http';
import { azureError } from '../http';
import { seededUuid } from '../ids';
import type { ConsumerWorld } from './consumers';
import { DEFAULT_MAX_REPLICAS, type ReplicaScale, scaleFromPatch } from './containerAppScale';
import { type ArmProvider, type ArmRequest, notEmulated } from './emulator';
import type { ArmOperations } from './operations';
import { resourceIdOf } from './resourceId';

export const CONTAINER_APPS_NAMESPACE = 'Microsoft.App';

export interface ContainerApp {
  name: string;
  resourceGroup: string;
  location: string;
  id: string;
  revision: string;
  createdAt: string;
  /** `template.scale` (`containerAppScale.ts`). */
  scale: ReplicaScale;
  /** Revisions created since the first (a scale change creates one). */
  revisions: number;
}

export class ContainerApps implements ArmProvider {
  readonly namespace = CONTAINER_APPS_NAMESPACE;
  readonly types = ['containerApps'] as const;
  private readonly apps = new Map<string, ContainerApp>();

  constructor(
    private readonly subscriptionId: string,
    private readonly seed: string,
    private readonly now: () => Date,
    private readonly consumers: () => ConsumerWorld,
    /** Long-running operations (scale changes); without them, PATCH is not emulated. */
    private readonly operations?: ArmOperations,
  ) {}

  add(spec: { name: string; resourceGroup: string; location: string; scale?: ReplicaScale }): ContainerApp {
    const suffix = seededUuid(this.seed, 'container-app-revision', spec.name).replace(/-/g, '').slice(0, 7);
    const app: ContainerApp = {
      ...spec,
      id: resourceIdOf(this.subscriptionId, spec.resourceGroup, CONTAINER_APPS_NAMESPACE, [
        { type: 'containerApps', name: spec.name },
      ]),
      revision: `${spec.name}--${suffix}`,
      createdAt: this.now().toISOString(),
      scale: spec.scale ?? { minReplicas: 0, maxReplicas: DEFAULT_MAX_REPLICAS },
      revisions: 0,
    };
    this.apps.set(spec.name.toLowerCase(), app);
    return app;
  }

  all(): ContainerApp[] {
    return [...this.apps.values()];
  }

  lookup(_type: string, name: string) {
    return this.apps.get(name.toLowerCase());
  }

  private consumersOf(app: ContainerApp) {
    return this.consumers().find((c) => c.target.kind === 'containerApp' && c.target.appId === app.id);
  }

  private revisionBody(app: ContainerApp) {
    const world = this.consumers();
    const consumers = this.consumersOf(app);
    const rolling = consumers.some((c) => world.runningRoll(c.name) !== undefined);
    const failed = consumers.map((c) => world.lastRoll(c.name)).find((r) => r?.status === 'failed');
    return {
      id: `${app.id}/revisions/${app.revision}`,
      name: app.revision,
      type: `${CONTAINER_APPS_NAMESPACE}/containerApps/revisions`,
      properties: {
        createdTime: app.createdAt,
        fqdn: `${app.revision}.${app.location}.azurecontainerapps.io`,
        active: true,
        replicas: 1,
        trafficWeight: 100,
        provisioningState: 'Provisioned',
        runningState: rolling ? 'Processing' : failed ? 'Degraded' : 'Running',
        ...(failed && !rolling ? { runningStateDetails: failed.reason } : {}),
        healthState: rolling ? 'None' : failed ? 'Unhealthy' : 'Healthy',
      },
    };
  }

  private appBody(app: ContainerApp) {
    return {
      id: app.id,
      name: app.name,
      type: `${CONTAINER_APPS_NAMESPACE}/containerApps`,
      location: app.location,
      properties: {
        provisioningState: 'Succeeded',
        runningStatus: 'Running',
        latestRevisionName: app.revision,
        latestReadyRevisionName: app.revision,
        latestRevisionFqdn: `${app.revision}.${app.location}.azurecontainerapps.io`,
        configuration: { activeRevisionsMode: 'Single' },
        template: {
          scale: { minReplicas: app.scale.minReplicas, maxReplicas: app.scale.maxReplicas, rules: [] },
        },
      },
    };
  }

  handle(req: ArmRequest): SandboxReply {
    const app = this.apps.get(req.path.chain[0]!.name.toLowerCase())!;
    const chain = req.path.chain;
    const action = req.path.action?.toLowerCase();
    if (chain.length === 1 && action === undefined && req.method === 'GET') {
      return { status: 200, body: this.appBody(app) };
    }
    if (chain.length === 1 && action === undefined && req.method === 'PATCH' && this.operations) {
      const patched = scaleFromPatch(req.method, req.url.pathname, req.body, app.scale);
      if ('reply' in patched) return patched.reply;
      app.scale = patched.scale;
      // Scale settings are revision-scope: a new revision, whose replicas read their secrets anew.
      app.revisions += 1;
      const suffix = seededUuid(this.seed, 'container-app-revision', app.name, app.revisions)
        .replace(/-/g, '')
        .slice(0, 7);
      app.revision = `${app.name}--${suffix}`;
      for (const consumer of this.consumersOf(app))
        this.consumers().startRoll(consumer.name, 'containerAppRevision');
      const op = this.operations.start({
        namespace: CONTAINER_APPS_NAMESPACE,
        location: app.location,
        subscriptionId: req.subscriptionId,
        apiVersion: req.apiVersion,
        collections: { status: 'containerappOperationStatuses', result: 'containerappOperationResults' },
        outcome: { result: () => ({ status: 200, body: this.appBody(app) }) },
      });
      return {
        status: 202,
        headers: { 'azure-asyncoperation': op.statusUrl, location: op.resultUrl, 'retry-after': '0' },
      };
    }
    if (chain.length === 1 && action === 'revisions' && req.method === 'GET') {
      return { status: 200, body: { value: [this.revisionBody(app)] } };
    }
    if (chain.length === 2 && chain[1]!.type.toLowerCase() === 'revisions') {
      if (chain[1]!.name !== app.revision) {
        return azureError(
          404,
          'ContainerAppRevisionNotFound',
          `Revision '${chain[1]!.name}' of container app '${app.name}' was not found.`,
        );
      }
      if (action === undefined && req.method === 'GET') return { status: 200, body: this.revisionBody(app) };
      if (action === 'restart' && req.method === 'POST') {
        for (const consumer of this.consumersOf(app))
          this.consumers().startRoll(consumer.name, 'containerAppRestart');
        return { status: 200 };
      }
    }
    return notEmulated(
      req.method,
      req.url.pathname,
      'container app operations other than GET, PATCH of template.scale, revisions and restart',
    );
  }
}
