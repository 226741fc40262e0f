/**
 * App Service and Functions apps (`Microsoft.Web/sites`): the site and its restart
 * (azure-rest-api-specs web `WebApps_Get`, `WebApps_Restart`).
 *
 * - `GET .../sites/{name}`: `kind` (`app` or `functionapp`), `properties.state: Running`,
 *   `defaultHostName`;
 * - `POST .../sites/{name}/restart[?softRestart=][&synchronous=]`: 200, no body; every consumer of
 *   the site is rolled (its new workers read the secret's current version, as App Service re-reads
 *   Key Vault references when the site restarts). `synchronous=true` (block until the site is
 *   restarted) cannot be emulated on a clock that only moves when asked: it answers 501, so that no
 *   caller relies on it against the sandbox. Slots are not emulated.
 */
import type { SandboxReply } from '../http';
import type { ConsumerWorld } from './consumers';
import { type ArmProvider, type ArmRequest, notEmulated } from './emulator';
import { resourceIdOf } from './resourceId';

export const WEB_NAMESPACE = 'Microsoft.Web';

export interface WebApp {
  name: string;
  resourceGroup: string;
  location: string;
  kind: 'app' | 'functionapp';
  id: string;
}

export class WebApps implements ArmProvider {
  readonly namespace = WEB_NAMESPACE;
  readonly types = ['sites'] as const;
  private readonly sites = new Map<string, WebApp>();

  constructor(
    private readonly subscriptionId: string,
    private readonly consumers: () => ConsumerWorld,
  ) {}

  add(spec: { name: string; resourceGroup: string; location: string; kind: 'app' | 'functionapp' }): WebApp {
    const site: WebApp = {
      ...spec,
      id: resourceIdOf(this.subscriptionId, spec.resourceGroup, WEB_NAMESPACE, [
        { type: 'sites', name: spec.name },
      ]),
    };
    this.sites.set(spec.name.toLowerCase(), site);
    return site;
  }

  all(): WebApp[] {
    return [...this.sites.values()];
  }

  lookup(_type: string, name: string) {
    return this.sites.get(name.toLowerCase());
  }

  handle(req: ArmRequest): SandboxReply {
    const site = this.sites.get(req.path.chain[0]!.name.toLowerCase())!;
    const action = req.path.action?.toLowerCase();
    if (req.path.chain.length !== 1)
      return notEmulated(req.method, req.url.pathname, 'site child resources (slots, config)');
    if (action === undefined && req.method === 'GET') {
      return {
        status: 200,
        body: {
          id: site.id,
          name: site.name,
          type: `${WEB_NAMESPACE}/sites`,
          kind: site.kind,
          location: site.location,
          properties: {
            state: 'Running',
            enabled: true,
            defaultHostName: `${site.name}.azurewebsites.net`,
            hostNames: [`${site.name}.azurewebsites.net`],
          },
        },
      };
    }
    if (action === 'restart' && req.method === 'POST') {
      if (req.url.searchParams.get('synchronous')?.toLowerCase() === 'true') {
        return notEmulated(
          req.method,
          req.url.pathname,
          'synchronous=true: a restart cannot block on the sandbox clock',
        );
      }
      const world = this.consumers();
      for (const consumer of world.find((c) => c.target.kind === 'webApp' && c.target.siteId === site.id)) {
        world.startRoll(consumer.name, 'webAppRestart');
      }
      return { status: 200 };
    }
    return notEmulated(req.method, req.url.pathname, 'site operations other than GET and restart');
  }
}
