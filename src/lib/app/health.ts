import type { Policy } from '../config/policy';
import { ConfigurationError, ForbiddenError, isStampkeeperError } from '../core/errors';
import { describeError, type Logger } from '../core/logging';
import { redactText } from '../core/redact';
import type { Clock } from '../ports/clock';
import type { SecretVault } from '../ports/secrets';

/** How long a vault's answer is reused: health probes come every few seconds, vault reads cost quota. */
export const VAULT_PROBE_TTL_MS = 5 * 60_000;

export interface HealthCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** `configuration`: a person must fix a setting or the policy; `transient`: it may mend itself. */
  problem?: 'configuration' | 'transient';
}

export interface HealthReport {
  status: 'healthy' | 'unhealthy';
  environment: string;
  platform: string;
  checks: HealthCheck[];
}

export interface HealthDeps {
  state: { ready(): Promise<void>; ping(options?: { abortSignal?: AbortSignal }): Promise<void> };
  vault: Pick<SecretVault, 'listSecrets'>;
  clock: Clock;
  logger: Logger;
  policy: Policy;
  /** The vaults holding managed secrets: each must resolve and let the app list secrets. */
  managedVaults: string[];
  environment: string;
  platform: string;
  /** Vault answers kept across invocations (per process). */
  vaultCache: Map<string, { at: number; check: HealthCheck }>;
}

/**
 * The app's health: storage reachable (its tables and queues created on first use), the policy
 * loaded, and every managed vault resolvable and readable (a vault that does not resolve or denies
 * the app is a configuration problem a person must fix, not a transient failure). Reveals names,
 * never configuration values. Needs what the app needs anyway: Table/Queue data access, and
 * `secrets/list` on the managed vaults.
 */
export async function checkHealth(
  deps: HealthDeps,
  options: { abortSignal?: AbortSignal } = {},
): Promise<HealthReport> {
  const checks: HealthCheck[] = [];
  try {
    await deps.state.ready();
    await deps.state.ping({ abortSignal: options.abortSignal });
    checks.push({ name: 'storage', ok: true, detail: 'table storage reachable' });
  } catch (error) {
    deps.logger.warn('health check failed', { check: 'storage', error: describeError(error) });
    checks.push({ name: 'storage', ok: false, detail: 'table storage unreachable', problem: 'transient' });
  }
  const { policy } = deps;
  checks.push({
    name: 'policy',
    ok: true,
    detail: `policy v${policy.version} valid: ${policy.secrets.length} managed secret(s), ${policy.notifications.channels.length} channel(s)`,
  });
  checks.push(...(await Promise.all(deps.managedVaults.map((url) => probeVault(url, deps, options)))));
  return {
    status: checks.every((c) => c.ok) ? 'healthy' : 'unhealthy',
    environment: deps.environment,
    platform: deps.platform,
    checks,
  };
}

async function probeVault(
  vaultUrl: string,
  deps: HealthDeps,
  options: { abortSignal?: AbortSignal },
): Promise<HealthCheck> {
  const now = deps.clock.now().getTime();
  const cached = deps.vaultCache.get(vaultUrl);
  if (cached && now - cached.at >= 0 && now - cached.at < VAULT_PROBE_TTL_MS) return cached.check;
  const name = `vault ${new URL(vaultUrl).host}`;
  let check: HealthCheck;
  try {
    // One page of names is enough to prove the vault resolves and lets the app list.
    for await (const _ of deps.vault.listSecrets(vaultUrl, { abortSignal: options.abortSignal })) break;
    check = { name, ok: true, detail: 'resolves; secrets can be listed' };
  } catch (error) {
    const detail = redactText(isStampkeeperError(error) ? error.message : 'unexpected error').slice(0, 300);
    const configuration = error instanceof ConfigurationError || error instanceof ForbiddenError;
    check = { name, ok: false, detail, problem: configuration ? 'configuration' : 'transient' };
    deps.logger.warn('health check failed', { check: name, error: describeError(error) });
  }
  deps.vaultCache.set(vaultUrl, { at: now, check });
  return check;
}
