import { WebSiteManagementClient } from '@azure/arm-appservice';
import type { TokenCredential } from '@azure/core-auth';
import { ValidationError } from '../core/errors';
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

const NAMESPACE = 'Microsoft.Web';
const DEFAULT_SETTLE_SECONDS = 60;
const MAX_SETTLE_SECONDS = 3600;

/**
 * Rolls an App Service or Functions app by restarting it through ARM (`@azure/arm-appservice`,
 * `restart` with `softRestart=false`, `synchronous=false`): its workers restart and re-read their
 * Key Vault references. A restart reports no progress, so the roll counts as running for
 * `settleSeconds` (platform clock), then is done when the health check (if any) agrees.
 */
export class WebAppRoller implements ConsumerRoller {
  readonly kind = 'webApp' as const;
  private readonly clients: ClientsBySubscription<WebSiteManagementClient>;
  private readonly clock: Clock;
  private readonly health: HealthProbe;

  constructor(
    credential: TokenCredential,
    options: ArmAdapterOptions & { clock?: Clock; healthClient?: ArmAdapterOptions['httpClient'] } = {},
  ) {
    this.clients = new ClientsBySubscription(
      (sub) => new WebSiteManagementClient(credential, sub, armClientOptions(options)),
    );
    this.clock = options.clock ?? systemClock;
    this.health = new HealthProbe(options.healthClient);
  }

  private target(consumer: Consumer) {
    const target = targetOf(consumer, 'webApp');
    const settle = target.settleSeconds ?? DEFAULT_SETTLE_SECONDS;
    if (!Number.isFinite(settle) || settle < 0 || settle > MAX_SETTLE_SECONDS) {
      throw new ValidationError(
        `consumer ${consumer.name}: settleSeconds must be from 0 to ${MAX_SETTLE_SECONDS}`,
        ['settleSeconds'],
      );
    }
    const id = parseArmId(target.siteId, NAMESPACE, [['sites']]);
    return { id, site: id.names[0]!, siteId: target.siteId, settle };
  }

  /** Restarts the site. Needs `Microsoft.Web/sites/restart/action`. One ARM call. */
  async start(consumer: Consumer, context: RollContext = {}): Promise<RollHandle> {
    const t = this.target(consumer);
    try {
      await this.clients.get(t.id.subscriptionId).webApps.restart(t.id.resourceGroup, t.site, {
        softRestart: false,
        synchronous: false,
        abortSignal: context.abortSignal,
      });
    } catch (error) {
      throw armError(error, `restarting web app ${t.site}`, t.siteId);
    }
    return handleOf(this.kind, consumer, this.clock, { site: t.site });
  }

  /** No ARM call: the settle time on the platform clock, then the health check (if any). */
  async status(consumer: Consumer, handle: RollHandle, context: RollContext = {}): Promise<RollStatus> {
    const t = this.target(consumer);
    checkHandle(handle, this.kind, consumer, ['site']);
    const elapsed = (this.clock.now().getTime() - Date.parse(handle.startedAt)) / 1000;
    if (elapsed < t.settle)
      return { state: 'running', detail: `restarted; settling (${Math.ceil(t.settle - elapsed)} s left)` };
    return verified(this.health, consumer, context, 'restarted and settled');
  }
}
