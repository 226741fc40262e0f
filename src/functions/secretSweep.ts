import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getDeps } from '../lib/app/deps';
import { sweepSecrets } from '../lib/rotation/sweepSecrets';
import { invocationLogger } from './invocation';

/**
 * The safety-net sweep of secrets near expiry, on the policy's `schedules.secretSweep`. The
 * Functions host runs a timer function as a singleton; every secret the sweep finds is handled as
 * its Key Vault event would be, and de-duplicated against it; managed secrets whose Key Vault state
 * or tags disagree with the policy are reported once per version.
 */
export async function secretSweep(_timer: Timer, context: InvocationContext): Promise<void> {
  const deps = getDeps();
  const logger = invocationLogger(context, 'secretSweep');
  await deps.ready();
  await sweepSecrets(deps.secretSweep(logger), {
    actor: 'system:timer',
    correlationId: context.invocationId,
    attemptId: context.invocationId,
  });
}

app.timer('secretSweep', { schedule: getDeps().policy.schedules.secretSweep, handler: secretSweep });
