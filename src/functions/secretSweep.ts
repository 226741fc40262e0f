import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getDeps } from '../lib/app/deps';
import { sweepSecrets } from '../lib/rotation/sweepSecrets';
import { invocationLogger } from './invocation';

const LEASE = 'timer:secretSweep';
const LEASE_MS = 10 * 60_000;

/**
 * The safety-net sweep of secrets near expiry, on the policy's `schedules.secretSweep`. One
 * instance at a time (a lease); every secret it finds is handled as its Key Vault event would be,
 * and de-duplicated against it.
 */
export async function secretSweep(_timer: Timer, context: InvocationContext): Promise<void> {
  const deps = getDeps();
  const logger = invocationLogger(context, 'secretSweep');
  await deps.ready();
  const lease = await deps.state.leases.acquire(LEASE, context.invocationId, LEASE_MS);
  if (!lease) {
    logger.info('another instance is sweeping secrets');
    return;
  }
  try {
    await sweepSecrets(deps.secretEventDeps(logger), {
      actor: 'system:timer',
      correlationId: context.invocationId,
      attemptId: context.invocationId,
    });
  } finally {
    await deps.state.leases.release(LEASE, context.invocationId).catch(() => undefined);
  }
}

app.timer('secretSweep', { schedule: getDeps().policy.schedules.secretSweep, handler: secretSweep });
