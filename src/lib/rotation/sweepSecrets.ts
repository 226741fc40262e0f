import { isRetryable } from '../core/errors';
import { stableHash } from '../core/ids';
import { redactText } from '../core/redact';
import type { SecretProperties } from '../ports/secrets';
import { currentVersionOf } from './currentVersion';
import {
  handleSecretEvent,
  NEAR_EXPIRY_WINDOW_DAYS,
  type SecretEventContext,
  type SecretEventDeps,
} from './handleSecretEvent';
import type { SecretEvent } from './keyVaultEvent';

const DAY_MS = 86_400_000;

export interface SweepSummary {
  vaults: number;
  checked: number;
  nearExpiry: number;
  expired: number;
  /** Of those, secrets of Key Vault certificates (reported as certificate-managed). */
  certificateManaged: number;
  /** Handled now (notified, reported, planned in dry run). */
  handled: number;
  /** Looked at, nothing to do now (the state moved on meanwhile); the key stays free. */
  skipped: number;
  /** Already handled (an Event Grid delivery or an earlier sweep got there first). */
  duplicates: number;
  /** Secrets the sweep could not handle, with a non-sensitive reason; the next sweep tries again. */
  failures: Array<{ target: string; reason: string; retryable: boolean }>;
}

/**
 * The safety net behind Key Vault's events: lists the secrets of every vault that holds a managed
 * secret (metadata only, never a value) and handles each one inside its 30-day window or past
 * expiry exactly as the matching Event Grid event would be handled. The idempotency key is the
 * same (event kind + secret version + expiry), so a secret whose event already arrived is a
 * duplicate and nothing is sent twice; a lost, undelivered or early-skipped event is caught here.
 * Where the current version is ambiguous (versions created in the same second), every candidate
 * is handled: a duplicate notice is cheap, a missed one is not.
 *
 * Needs `secrets/list` on the vaults. Never throws for one secret: failures are collected in the
 * summary (and logged), and the next sweep retries them.
 */
export async function sweepSecrets(
  deps: SecretEventDeps,
  ctx: Omit<SecretEventContext, 'attemptId'> & { attemptId: string },
): Promise<SweepSummary> {
  const now = deps.clock.now();
  const summary: SweepSummary = {
    vaults: 0,
    checked: 0,
    nearExpiry: 0,
    expired: 0,
    certificateManaged: 0,
    handled: 0,
    skipped: 0,
    duplicates: 0,
    failures: [],
  };
  for (const vaultUrl of deps.policy.managedVaults()) {
    summary.vaults++;
    const vaultName = new URL(vaultUrl).host.split('.')[0]!;
    const names = new Set<string>();
    try {
      for await (const item of deps.vault.listSecrets(vaultUrl, { abortSignal: ctx.abortSignal })) {
        if (item.enabled === false || !item.expiresOn) continue;
        if (item.expiresOn.getTime() - now.getTime() > NEAR_EXPIRY_WINDOW_DAYS * DAY_MS) continue;
        names.add(item.name);
      }
    } catch (error) {
      summary.failures.push(failure(`vaults/${vaultName}`, error));
      continue;
    }
    for (const name of names) {
      const target = `vaults/${vaultName}/secrets/${name}`;
      summary.checked++;
      try {
        const versions: SecretProperties[] = [];
        for await (const v of deps.vault.listSecretVersions(vaultUrl, name, { abortSignal: ctx.abortSignal }))
          versions.push(v);
        for (const current of currentVersionOf(versions).candidates) {
          if (!current.version || !current.expiresOn || current.enabled === false) continue;
          if (current.expiresOn.getTime() - now.getTime() > NEAR_EXPIRY_WINDOW_DAYS * DAY_MS) continue;
          const expired = current.expiresOn.getTime() <= now.getTime();
          if (expired) summary.expired++;
          else summary.nearExpiry++;
          if (current.managed) summary.certificateManaged++;
          const event: SecretEvent = {
            id: `sweep-${stableHash(vaultUrl, name, current.version, expired ? 'expired' : 'near')}`,
            type: expired ? 'Microsoft.KeyVault.SecretExpired' : 'Microsoft.KeyVault.SecretNearExpiry',
            time: now,
            source: 'stampkeeper:secretSweep',
            schema: 'Sweep',
            vaultName,
            vaultUrl,
            secretName: name,
            version: current.version,
            notBefore: current.notBefore,
            expiresOn: current.expiresOn,
          };
          const outcome = await handleSecretEvent(
            event,
            deps,
            { ...ctx, attemptId: `${ctx.attemptId}:${name}:${current.version}` },
            { versions },
          );
          if (outcome.status === 'duplicate') summary.duplicates++;
          else if (outcome.status === 'handled') summary.handled++;
          else summary.skipped++;
        }
      } catch (error) {
        summary.failures.push(failure(target, error));
      }
    }
  }
  for (const f of summary.failures)
    deps.logger.warn('secret sweep could not handle a secret', { operation: 'secretSweep', ...f });
  deps.logger.info('secret sweep done', {
    operation: 'secretSweep',
    ...summary,
    failures: summary.failures.length,
  });
  return summary;
}

function failure(target: string, error: unknown): { target: string; reason: string; retryable: boolean } {
  return {
    target,
    reason: redactText(error instanceof Error ? error.message : String(error)).slice(0, 500),
    retryable: isRetryable(error),
  };
}
