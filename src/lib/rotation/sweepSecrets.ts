import { isRetryable } from '../core/errors';
import { stableHash } from '../core/ids';
import { runOnce } from '../core/once';
import { redactText } from '../core/redact';
import { notifyAndAudit } from '../notify/notifyAndAudit';
import type { Notification } from '../ports/notifier';
import type { SecretProperties } from '../ports/secrets';
import { currentVersionOf } from './currentVersion';
import {
  handleSecretEvent,
  NEAR_EXPIRY_WINDOW_DAYS,
  type SecretEventContext,
  type SecretEventDeps,
  targetOf,
} from './handleSecretEvent';
import type { SecretEvent } from './keyVaultEvent';
import { TAGS } from './rotation';

const DAY_MS = 86_400_000;

/**
 * What one sweep may spend of a vault's Key Vault transactions: a tenth of Key Vault's limit for
 * secrets (4,000 transactions per 10 s per vault and region, learn.microsoft.com/azure/key-vault/
 * general/service-limits), so that the sweep never crowds out the workloads that read the vault.
 */
export const SWEEP_KEY_VAULT_BUDGET: Readonly<KeyVaultBudget> = { transactions: 400, windowMs: 10_000 };

/** Key Vault's listings hold at most 25 items a page (`maxresults`: default and maximum 25). */
export const KEY_VAULT_PAGE_SIZE = 25;

/**
 * How long a disagreement with the policy, once reported, is not reported again for the same
 * version: a version that still disagrees after that is reported again, as a reminder.
 */
const DISAGREEMENT_REMEMBERED_MS = 90 * DAY_MS;

/** At most `transactions` Key Vault transactions in any `windowMs` of machine time. */
export interface KeyVaultBudget {
  transactions: number;
  windowMs: number;
}

/** Machine time and waiting in it: Key Vault counts real seconds (the sandbox clock only moves when asked). */
export interface PacingTimer {
  now(): number;
  sleep(ms: number, abortSignal?: AbortSignal): Promise<void>;
}

export const wallTimer: PacingTimer = {
  now: () => Date.now(),
  sleep: (ms, abortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (abortSignal?.aborted) {
        reject(abortSignal.reason);
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(abortSignal?.reason);
      };
      const timer = setTimeout(() => {
        abortSignal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      abortSignal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/**
 * Paces the Key Vault transactions of a sequential caller over a sliding window: the (n + budget)th
 * transaction starts at least `windowMs` after the nth ended, so no window of that length, as the
 * vault counts it, ever holds more than `transactions`. The caller is sequential: when it takes a
 * transaction, the one before has ended, and that end is what the window counts from (counting from
 * its start would let a slow request and a fast one land inside one window).
 */
export class TransactionPacer {
  /** When the last `budget` transactions ended (the last one: when it was taken, until the next take). */
  private readonly started: number[] = [];
  private taken = 0;

  constructor(
    private readonly budget: Readonly<KeyVaultBudget>,
    private readonly timer: PacingTimer = wallTimer,
  ) {
    if (!Number.isInteger(budget.transactions) || budget.transactions < 1)
      throw new RangeError('a Key Vault budget needs at least one transaction');
    if (!Number.isFinite(budget.windowMs) || budget.windowMs <= 0)
      throw new RangeError('a Key Vault budget needs a window above 0 ms');
  }

  /** Transactions taken so far. */
  get count(): number {
    return this.taken;
  }

  /** Waits (if need be) until one more transaction fits in the budget, and takes it. */
  async take(abortSignal?: AbortSignal): Promise<void> {
    if (this.started.length > 0) this.started[this.started.length - 1] = this.timer.now();
    if (this.started.length >= this.budget.transactions) {
      const oldest = this.started.shift()!;
      const wait = oldest + this.budget.windowMs - this.timer.now();
      if (wait > 0) await this.timer.sleep(wait, abortSignal);
    }
    this.started.push(this.timer.now());
    this.taken++;
  }
}

/** One managed secret as the policy names it: what its Key Vault state and tags must agree with. */
export interface ManagedSecretPolicyView {
  name: string;
  owner?: string;
  channels: string[];
  /** `manual`: people rotate it; otherwise the key provider and the resource its versions name. */
  rotation: { provider: 'manual' } | { provider: string; resourceId: string };
}

/** The sweep's dependencies: those of a Key Vault event, and the policy's managed secrets per vault. */
export interface SweepDeps extends SecretEventDeps {
  /** The managed secrets of one vault (its URL as `managedVaults()` gives it). Absent: nothing is checked against the policy. */
  managedSecrets?: (vaultUrl: string) => ManagedSecretPolicyView[];
}

export interface SweepOptions {
  /** Key Vault transactions the sweep may take per vault. Default `SWEEP_KEY_VAULT_BUDGET`. */
  budget?: Readonly<KeyVaultBudget>;
  /** Machine time (tests give a fake one). */
  timer?: PacingTimer;
}

/** What can be wrong with a managed secret in Key Vault, as the policy sees it. */
export type DisagreementKind =
  | 'missing'
  | 'disabled'
  | 'noExpiry'
  | 'certificateManaged'
  | 'tagsMissing'
  | 'tagsMalformed'
  | 'providerMismatch'
  | 'resourceMismatch';

export interface Disagreement {
  kind: DisagreementKind;
  /** Names and values of tags, never a secret value. */
  detail: string;
}

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
  /** Managed secrets whose Key Vault state or tags disagree with the policy. */
  disagreements: {
    /** (secret, version, kind) found by this sweep. */
    found: number;
    /** Of those, reported now (audit record, notice). */
    reported: number;
    /** Of those, reported by an earlier sweep. */
    duplicates: number;
  };
  /**
   * Key Vault transactions the sweep reserved from its budget: one per page of a listing, reserved
   * before the page is asked for (a listing of a multiple of 25 items reserves one page it never uses).
   */
  keyVaultTransactions: number;
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
 * It also checks every managed secret against the policy (`deps.managedSecrets`): missing,
 * disabled, without expiry, the secret of a certificate while a key provider should rotate it, or
 * (rotated secrets) a current version whose `stampkeeper-provider` / `-resource` / `-key` tags are
 * missing, malformed or name another provider or resource. Each (secret, version, kind) is
 * reported once (an audit record `secret.policy.report` and a notice to the secret's channels),
 * de-duplicated as events are: only a report done consumes its key.
 *
 * Cost: one listing of the vault (a transaction per page of 25), then a listing of versions only
 * for secrets inside the window or disagreeing with the policy. Paced to `options.budget` per vault
 * (a tenth of Key Vault's limit by default): a vault of 1,000 secrets is swept without ever coming
 * near its throttle. Needs `secrets/list` on the vaults. Never throws for one secret: failures are
 * collected in the summary (and logged), and the next sweep retries them.
 */
export async function sweepSecrets(
  deps: SweepDeps,
  ctx: Omit<SecretEventContext, 'attemptId'> & { attemptId: string },
  options: SweepOptions = {},
): Promise<SweepSummary> {
  const budget = options.budget ?? SWEEP_KEY_VAULT_BUDGET;
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
    disagreements: { found: 0, reported: 0, duplicates: 0 },
    keyVaultTransactions: 0,
    failures: [],
  };
  const inWindow = (expiresOn: Date) =>
    expiresOn.getTime() - now.getTime() <= NEAR_EXPIRY_WINDOW_DAYS * DAY_MS;

  for (const vaultUrl of deps.policy.managedVaults()) {
    summary.vaults++;
    const vaultName = new URL(vaultUrl).host.split('.')[0]!;
    const pacer = new TransactionPacer(budget, options.timer);
    // The listing gives each secret's current version (its attributes and tags, not its id).
    const listed = new Map<string, SecretProperties>();
    const expiring = new Set<string>();
    try {
      for await (const item of paced(
        deps.vault.listSecrets(vaultUrl, { abortSignal: ctx.abortSignal }),
        pacer,
        ctx.abortSignal,
      )) {
        listed.set(item.name.toLowerCase(), item);
        if (item.enabled === false || !item.expiresOn || !inWindow(item.expiresOn)) continue;
        expiring.add(item.name);
      }
    } catch (error) {
      summary.failures.push(failure(`vaults/${vaultName}`, error));
      summary.keyVaultTransactions += pacer.count;
      continue;
    }
    // Managed secrets the listing already shows in disagreement with the policy (no call needed to know).
    const disagreeing = new Map<string, ManagedSecretPolicyView>();
    for (const managed of deps.managedSecrets?.(vaultUrl) ?? []) {
      const item = listed.get(managed.name.toLowerCase());
      if (!item) {
        summary.disagreements.found++;
        await report(
          deps,
          ctx,
          summary,
          { vaultUrl, vaultName, name: managed.name, version: 'none', managed },
          {
            kind: 'missing',
            detail: `the policy names secret ${managed.name}, which ${vaultName} does not hold`,
          },
        );
        continue;
      }
      if (disagreementsOf(item, managed).length > 0) disagreeing.set(item.name, managed);
    }

    for (const name of new Set([...expiring, ...disagreeing.keys()])) {
      const target = `vaults/${vaultName}/secrets/${name}`;
      summary.checked++;
      let versions: SecretProperties[];
      try {
        versions = [];
        for await (const v of paced(
          deps.vault.listSecretVersions(vaultUrl, name, { abortSignal: ctx.abortSignal }),
          pacer,
          ctx.abortSignal,
        ))
          versions.push(v);
      } catch (error) {
        summary.failures.push(failure(target, error));
        continue;
      }
      const { candidates } = currentVersionOf(versions);
      if (expiring.has(name)) {
        try {
          await handleExpiry(deps, ctx, summary, { vaultUrl, vaultName, name, now, versions, candidates });
        } catch (error) {
          summary.failures.push(failure(target, error));
        }
      }
      const managed = disagreeing.get(name);
      if (!managed) continue;
      // The disagreement of each version that may be the current one, as its own listing shows it.
      for (const current of candidates) {
        for (const disagreement of disagreementsOf(current, managed)) {
          summary.disagreements.found++;
          await report(
            deps,
            ctx,
            summary,
            { vaultUrl, vaultName, name, version: current.version ?? 'unknown', managed, current },
            disagreement,
          );
        }
      }
    }
    summary.keyVaultTransactions += pacer.count;
  }
  for (const f of summary.failures)
    deps.logger.warn('secret sweep could not handle a secret', { operation: 'secretSweep', ...f });
  deps.logger.info('secret sweep done', {
    operation: 'secretSweep',
    ...summary,
    disagreements: summary.disagreements.found,
    disagreementsReported: summary.disagreements.reported,
    failures: summary.failures.length,
  });
  return summary;
}

/** A listing taken through the pacer: one transaction before each page (25 items) is asked for. */
async function* paced<T>(
  items: AsyncIterable<T>,
  pacer: TransactionPacer,
  abortSignal: AbortSignal | undefined,
): AsyncIterable<T> {
  const iterator = items[Symbol.asyncIterator]();
  for (let i = 0; ; i++) {
    if (i % KEY_VAULT_PAGE_SIZE === 0) await pacer.take(abortSignal);
    const next = await iterator.next();
    if (next.done) return;
    yield next.value;
  }
}

async function handleExpiry(
  deps: SweepDeps,
  ctx: Omit<SecretEventContext, 'attemptId'> & { attemptId: string },
  summary: SweepSummary,
  s: {
    vaultUrl: string;
    vaultName: string;
    name: string;
    now: Date;
    versions: SecretProperties[];
    candidates: SecretProperties[];
  },
): Promise<void> {
  const { now } = s;
  for (const current of s.candidates) {
    if (!current.version || !current.expiresOn || current.enabled === false) continue;
    if (current.expiresOn.getTime() - now.getTime() > NEAR_EXPIRY_WINDOW_DAYS * DAY_MS) continue;
    const expired = current.expiresOn.getTime() <= now.getTime();
    if (expired) summary.expired++;
    else summary.nearExpiry++;
    if (current.managed) summary.certificateManaged++;
    const event: SecretEvent = {
      id: `sweep-${stableHash(s.vaultUrl, s.name, current.version, expired ? 'expired' : 'near')}`,
      type: expired ? 'Microsoft.KeyVault.SecretExpired' : 'Microsoft.KeyVault.SecretNearExpiry',
      time: now,
      source: 'stampkeeper:secretSweep',
      schema: 'Sweep',
      vaultName: s.vaultName,
      vaultUrl: s.vaultUrl,
      secretName: s.name,
      version: current.version,
      notBefore: current.notBefore,
      expiresOn: current.expiresOn,
    };
    const outcome = await handleSecretEvent(
      event,
      deps,
      { ...ctx, attemptId: `${ctx.attemptId}:${s.name}:${current.version}` },
      { versions: s.versions },
    );
    if (outcome.status === 'duplicate') summary.duplicates++;
    else if (outcome.status === 'handled') summary.handled++;
    else summary.skipped++;
  }
}

/**
 * How a secret's current version disagrees with the policy: its state (any managed secret must be
 * enabled and expire, or nothing warns before it does), and for a key provider's secret what the
 * rotation reads first (the tags `rotation.ts` checks before it acts). Tag values are names and
 * resource ids, never secrets.
 */
export function disagreementsOf(current: SecretProperties, managed: ManagedSecretPolicyView): Disagreement[] {
  const out: Disagreement[] = [];
  if (current.enabled === false)
    out.push({ kind: 'disabled', detail: 'the current version is disabled: consumers cannot read it' });
  if (!current.expiresOn)
    out.push({
      kind: 'noExpiry',
      detail: 'the current version has no expiry: nothing warns before it is too old',
    });
  const rotation = managed.rotation;
  if (!('resourceId' in rotation)) return out;
  if (current.managed) {
    out.push({
      kind: 'certificateManaged',
      detail: `the secret belongs to a Key Vault certificate, which its policy renews; ${rotation.provider} cannot rotate it`,
    });
    return out;
  }
  const tags = current.tags ?? {};
  const missing = [TAGS.provider, TAGS.resource, TAGS.slot].filter((t) => !tags[t]);
  if (missing.length > 0) {
    out.push({
      kind: 'tagsMissing',
      detail: `the current version lacks ${missing.join(', ')}: the rotation stops on it (tag it with ${TAGS.provider}=${rotation.provider}, ${TAGS.resource}=<the resource id>, ${TAGS.slot}=primary|secondary)`,
    });
  }
  const slot = tags[TAGS.slot];
  if (slot && slot !== 'primary' && slot !== 'secondary')
    out.push({ kind: 'tagsMalformed', detail: `${TAGS.slot} is '${slot}', not primary or secondary` });
  const provider = tags[TAGS.provider];
  if (provider && provider !== rotation.provider)
    out.push({
      kind: 'providerMismatch',
      detail: `${TAGS.provider} says ${provider}, the policy ${rotation.provider}`,
    });
  const resource = tags[TAGS.resource];
  if (resource && resource.toLowerCase() !== rotation.resourceId.toLowerCase())
    out.push({
      kind: 'resourceMismatch',
      detail: `${TAGS.resource} names ${resource}, the policy ${rotation.resourceId}`,
    });
  return out;
}

/**
 * Reports one disagreement once per (secret, version, kind): an audit record and a notice to the
 * secret's channels. Counted in the summary; a failure is collected, never thrown.
 */
async function report(
  deps: SweepDeps,
  ctx: Omit<SecretEventContext, 'attemptId'> & { attemptId: string },
  summary: SweepSummary,
  s: {
    vaultUrl: string;
    vaultName: string;
    name: string;
    version: string;
    managed: ManagedSecretPolicyView;
    current?: SecretProperties;
  },
  disagreement: Disagreement,
): Promise<void> {
  const dryRun = ctx.dryRun ?? deps.dryRun;
  const target = targetOf({ vaultName: s.vaultName, secretName: s.name });
  const key = `${dryRun ? 'dry-run|' : ''}secret-policy|${s.vaultUrl}|${s.name.toLowerCase()}|${s.version}|${disagreement.kind}`;
  const now = deps.clock.now();
  const where = `${s.name} in ${s.vaultName}`;
  const notification: Notification = {
    id: stableHash('notification', key),
    type: 'com.stampkeeper.secret.policyDisagreement',
    subject: target,
    severity: 'warning',
    title: `Secret disagrees with the policy: ${where}`,
    summary: `${where}, version ${s.version}: ${disagreement.detail}. Owner: ${s.managed.owner ?? 'unspecified'}. See docs/deploy.md (onboarding a secret).`,
    facts: {
      Vault: s.vaultName,
      Secret: s.name,
      Version: s.version,
      Problem: disagreement.kind,
      Rotation: s.managed.rotation.provider,
      Environment: deps.environment,
      ...(s.managed.owner ? { Owner: s.managed.owner } : {}),
    },
    correlationId: ctx.correlationId,
    time: now,
    data: {
      vaultUrl: s.vaultUrl,
      vaultName: s.vaultName,
      secretName: s.name,
      version: s.version,
      problem: disagreement.kind,
      detail: disagreement.detail,
      rotation: s.managed.rotation.provider,
      owner: s.managed.owner ?? null,
      environment: deps.environment,
    },
  };
  const tags = s.current?.tags ?? {};
  try {
    const once = await runOnce<Awaited<ReturnType<typeof notifyAndAudit>>>(
      deps.idempotency,
      key,
      {
        owner: `${ctx.attemptId}:policy:${s.name}:${s.version}:${disagreement.kind}`,
        ttlMs: Math.max(deps.idempotencyTtlMs, DISAGREEMENT_REMEMBERED_MS),
        leaseMs: deps.claimLeaseMs,
        busyMessage: `the disagreement of ${where} is being reported by another attempt`,
        summarize: (result) => ({ outcome: result.outcome, auditId: result.auditId }),
        abortSignal: ctx.abortSignal,
      },
      (work) =>
        notifyAndAudit(
          {
            notification,
            channels: s.managed.channels,
            record: {
              id: stableHash(key),
              time: now,
              actor: ctx.actor,
              action: 'secret.policy.report',
              target,
              correlationId: ctx.correlationId,
              reason: disagreement.detail,
              before: {
                version: s.version,
                problem: disagreement.kind,
                enabled: s.current?.enabled ?? null,
                expiresOn: s.current?.expiresOn?.toISOString() ?? null,
                tags: Object.fromEntries(
                  [TAGS.provider, TAGS.resource, TAGS.slot].map((t) => [t, tags[t] ?? null]),
                ),
              },
            },
            sentOutcome: 'reported',
            dryRun,
            what: 'the report',
          },
          deps,
          ctx,
          work,
        ),
    );
    if (once.status === 'duplicate') summary.disagreements.duplicates++;
    else summary.disagreements.reported++;
  } catch (error) {
    summary.failures.push(failure(target, error));
  }
}

function failure(target: string, error: unknown): { target: string; reason: string; retryable: boolean } {
  return {
    target,
    reason: redactText(error instanceof Error ? error.message : String(error)).slice(0, 500),
    retryable: isRetryable(error),
  };
}
