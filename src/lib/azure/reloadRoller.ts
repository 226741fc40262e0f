import type { HttpClient } from '@azure/core-rest-pipeline';
import { ValidationError } from '../core/errors';
import { type Clock, systemClock } from '../ports/clock';
import type { Consumer, ConsumerRoller, RollContext, RollHandle, RollStatus } from '../ports/consumers';
import { checkHandle, HealthProbe, handleOf, targetOf, verified } from './consumerRollers';

const MAX_WAIT_SECONDS = 7 * 24 * 3600;

/**
 * "Rolls" a consumer that picks new Key Vault versions up by itself (the Key Vault CSI driver's
 * rotation poll, App Service Key Vault references): nothing is called; the roll waits
 * `waitSeconds` on the platform clock, then is done when the health check (if any) agrees. Needs no
 * Azure permission.
 */
export class ReloadRoller implements ConsumerRoller {
  readonly kind = 'reload' as const;
  private readonly clock: Clock;
  private readonly health: HealthProbe;

  constructor(options: { clock?: Clock; healthClient?: HttpClient } = {}) {
    this.clock = options.clock ?? systemClock;
    this.health = new HealthProbe(options.healthClient);
  }

  private wait(consumer: Consumer): number {
    const { waitSeconds } = targetOf(consumer, 'reload');
    if (!Number.isFinite(waitSeconds) || waitSeconds < 0 || waitSeconds > MAX_WAIT_SECONDS) {
      throw new ValidationError(
        `consumer ${consumer.name}: waitSeconds must be from 0 to ${MAX_WAIT_SECONDS}`,
        ['waitSeconds'],
      );
    }
    return waitSeconds;
  }

  /** Records when the wait began; no remote call. */
  async start(consumer: Consumer, _context: RollContext = {}): Promise<RollHandle> {
    const wait = this.wait(consumer);
    return handleOf(this.kind, consumer, this.clock, { waitSeconds: String(wait) });
  }

  /** Running until `waitSeconds` have passed since the start, then the health check (if any). */
  async status(consumer: Consumer, handle: RollHandle, context: RollContext = {}): Promise<RollStatus> {
    const wait = this.wait(consumer);
    checkHandle(handle, this.kind, consumer, []);
    const elapsed = (this.clock.now().getTime() - Date.parse(handle.startedAt)) / 1000;
    if (elapsed < wait)
      return {
        state: 'running',
        detail: `waiting for the consumer to reload (${Math.ceil(wait - elapsed)} s left)`,
      };
    return verified(this.health, consumer, context, 'reload interval passed');
  }
}
