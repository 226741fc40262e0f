/**
 * Backup and restore readiness of Cosmos DB accounts. Per account: the backup policy against the
 * policy's expectations; for periodic backup, that a restore needs a support case (the runbook); for
 * continuous backup, the earliest restorable time and a drill that builds the point-in-time restore
 * request a person would send and checks each of its parts against Cosmos DB (the restorable source,
 * the time, the region, the new account's name), without ever sending it.
 */
import type { BackupReadinessCheck, ChecksPolicy } from '../config/policy';
import type { CosmosAccountView, CosmosDbInventory } from '../ports/inventory';
import type { Finding } from '../ports/reports';
import { parseResourceId } from './armIds';
import { isoSeconds, RUNBOOKS, runbookLink, unreadable } from './report';

const HOUR_MS = 3_600_000;
const TIER_DAYS: Record<string, number> = { Continuous7Days: 7, Continuous30Days: 30 };

export interface BackupReadinessDeps {
  cosmos: CosmosDbInventory;
  now: Date;
  checks: ChecksPolicy;
  abortSignal?: AbortSignal;
}

/** `West Europe` and `westeurope` name the same region. */
const sameRegion = (a: string, b: string) =>
  a.replace(/\s+/g, '').toLowerCase() === b.replace(/\s+/g, '').toLowerCase();

/** Findings for every account the check names (each account read on its own: one failure hides no other). */
export async function checkBackupReadiness(
  check: BackupReadinessCheck,
  deps: BackupReadinessDeps,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const expected of check.cosmosDbAccounts) {
    let account: CosmosAccountView;
    try {
      account = await deps.cosmos.getAccount(expected.resourceId, { abortSignal: deps.abortSignal });
    } catch (error) {
      findings.push(unreadable(expected.resourceId, 'backup.account', 'the Cosmos DB account', error));
      continue;
    }
    findings.push(...(await accountFindings(account, expected, deps)));
  }
  return findings;
}

async function accountFindings(
  account: CosmosAccountView,
  expected: BackupReadinessCheck['cosmosDbAccounts'][number],
  deps: BackupReadinessDeps,
): Promise<Finding[]> {
  const subject = expected.resourceId;
  const backup = account.backup;
  const restoreRunbook = runbookLink(deps.checks, RUNBOOKS.cosmosRestore);
  if (backup.type === 'Unknown') {
    return [
      {
        subject,
        code: 'backup.policy',
        status: 'unknown',
        title: `${account.name}: backup policy not understood`,
        detail: `The account answered ${backup.reported ? `a '${backup.reported}' backup policy` : 'no backup policy'}: its restore readiness is unknown.`,
        facts: { account: account.name, backupType: backup.reported ?? null },
        action: { summary: "Look at the account's backup policy in the portal (Backup & Restore)." },
      },
    ];
  }
  if (backup.type === 'Periodic') {
    const problems: string[] = [];
    if (
      backup.intervalMinutes === undefined ||
      backup.retentionHours === undefined ||
      backup.redundancy === undefined
    ) {
      return [
        {
          subject,
          code: 'backup.policy',
          status: 'unknown',
          title: `${account.name}: periodic backup settings missing`,
          detail:
            'The account answered a periodic backup policy without its interval, retention or redundancy.',
          facts: { account: account.name, backupType: 'Periodic' },
        },
      ];
    }
    if (backup.intervalMinutes > expected.maxIntervalMinutes)
      problems.push(
        `backups every ${backup.intervalMinutes} minutes (at most ${expected.maxIntervalMinutes})`,
      );
    if (backup.retentionHours < expected.minRetentionHours)
      problems.push(`kept ${backup.retentionHours} hours (at least ${expected.minRetentionHours})`);
    if (expected.redundancy && !expected.redundancy.includes(backup.redundancy))
      problems.push(`${backup.redundancy} storage (expected ${expected.redundancy.join(' or ')})`);
    const facts = {
      account: account.name,
      backupType: 'Periodic',
      intervalMinutes: backup.intervalMinutes,
      retentionHours: backup.retentionHours,
      redundancy: backup.redundancy,
      // Backups older than the retention are gone: what a restore could reach back to, at most.
      oldestBackupAbout: isoSeconds(new Date(deps.now.getTime() - backup.retentionHours * HOUR_MS)),
    };
    return [
      {
        subject,
        code: 'backup.policy',
        status: problems.length > 0 ? 'failed' : 'ok',
        title:
          problems.length > 0
            ? `${account.name}: periodic backup below policy`
            : `${account.name}: periodic backup as the policy expects`,
        detail:
          problems.length > 0
            ? `The backup policy does not meet the policy: ${problems.join('; ')}.`
            : `A backup every ${backup.intervalMinutes} minutes, each kept ${backup.retentionHours} hours, on ${backup.redundancy}-redundant storage.`,
        facts,
        ...(problems.length > 0
          ? {
              action: {
                summary:
                  "Change the account's periodic backup settings (portal: Backup & Restore, or `az cosmosdb update --backup-interval --backup-retention --backup-redundancy`).",
              },
            }
          : {}),
      },
      {
        subject,
        code: 'backup.restoreProcess',
        status: 'ok',
        title: `${account.name}: a restore needs a support case`,
        detail:
          'With periodic backup, Cosmos DB restores only through a support request, into a new account, within the retention. Nothing can be drilled from here; the runbook says how to ask for a restore and what to check after it.',
        facts: { account: account.name, restoreBy: 'support case' },
        action: {
          summary: 'When data must be restored, follow the runbook (support case).',
          runbook: restoreRunbook,
        },
      },
    ];
  }

  // Continuous backup: what Cosmos DB can restore, and a restore request checked part by part.
  const findings: Finding[] = [];
  const { subscriptionId } = parseResourceId(expected.resourceId);
  if (!account.instanceId) {
    return [
      {
        subject,
        code: 'backup.restoreWindow',
        status: 'unknown',
        title: `${account.name}: no instance id`,
        detail: 'The account answered no instance id: its restorable account cannot be looked up.',
        facts: { account: account.name, backupType: 'Continuous' },
      },
    ];
  }
  let restorable: Awaited<ReturnType<CosmosDbInventory['getRestorableAccount']>>;
  try {
    restorable = await deps.cosmos.getRestorableAccount(
      subscriptionId,
      account.location,
      account.instanceId,
      {
        abortSignal: deps.abortSignal,
      },
    );
  } catch (error) {
    return [unreadable(subject, 'backup.restoreWindow', 'the restorable account', error)];
  }
  const tier = backup.tier ?? 'unknown';
  if (!restorable?.oldestRestorableTime) {
    return [
      {
        subject,
        code: 'backup.restoreWindow',
        status: 'failed',
        title: `${account.name}: no point-in-time restore available`,
        detail: restorable
          ? 'Cosmos DB answered the restorable account without its oldest restorable time.'
          : `The account has continuous backup (${tier}) but Cosmos DB knows no restorable account for instance ${account.instanceId} in ${account.location}: a point-in-time restore would fail.`,
        facts: { account: account.name, backupType: 'Continuous', tier, instanceId: account.instanceId },
        action: { summary: 'Open a support case: the account cannot be restored.', runbook: restoreRunbook },
      },
    ];
  }
  const oldest = restorable.oldestRestorableTime;
  const windowDays = TIER_DAYS[tier];
  findings.push({
    subject,
    code: 'backup.restoreWindow',
    status: 'ok',
    title: `${account.name}: restorable from ${isoSeconds(oldest)}`,
    detail: `Continuous backup (${tier}): any point from ${isoSeconds(oldest)} to now can be restored into a new account.`,
    facts: {
      account: account.name,
      backupType: 'Continuous',
      tier,
      windowDays: windowDays ?? null,
      earliestRestorableTime: isoSeconds(oldest),
      restorableSince: restorable.creationTime ? isoSeconds(restorable.creationTime) : null,
    },
    action: {
      summary: 'When data must be restored, follow the runbook (point-in-time restore).',
      runbook: restoreRunbook,
    },
  });
  if (expected.drill.enabled) findings.push(await drill(account, expected, restorable, subscriptionId, deps));
  return findings;
}

/**
 * The point-in-time restore request a person would send (`PUT databaseAccounts/{target}` with
 * `createMode: Restore`), each of its parts checked against Cosmos DB; never sent.
 */
async function drill(
  account: CosmosAccountView,
  expected: BackupReadinessCheck['cosmosDbAccounts'][number],
  restorable: NonNullable<Awaited<ReturnType<CosmosDbInventory['getRestorableAccount']>>>,
  subscriptionId: string,
  deps: BackupReadinessDeps,
): Promise<Finding> {
  const subject = expected.resourceId;
  const target =
    expected.drill.targetAccountName ?? `${account.name}-restore`.slice(0, 44).replace(/-+$/, '');
  const region = expected.drill.location ?? account.location;
  const restoreTime = new Date(deps.now.getTime() - expected.drill.hoursAgo * HOUR_MS);
  const request = {
    method: 'PUT',
    path: `/subscriptions/${subscriptionId}/resourceGroups/${parseResourceId(subject).resourceGroup}/providers/Microsoft.DocumentDB/databaseAccounts/${target}`,
    body: {
      location: region,
      kind: 'GlobalDocumentDB',
      properties: {
        databaseAccountOfferType: 'Standard',
        createMode: 'Restore',
        locations: [{ locationName: region, failoverPriority: 0 }],
        restoreParameters: {
          restoreMode: 'PointInTime',
          restoreSource: restorable.sourceId,
          restoreTimestampInUtc: isoSeconds(restoreTime),
        },
      },
    },
  };
  const problems: string[] = [];
  if (restorable.deletionTime)
    problems.push(`the source was deleted at ${isoSeconds(restorable.deletionTime)}`);
  if (restoreTime.getTime() < (restorable.oldestRestorableTime?.getTime() ?? Number.POSITIVE_INFINITY))
    problems.push(
      `the restore time ${isoSeconds(restoreTime)} is before the earliest restorable time ${isoSeconds(restorable.oldestRestorableTime!)}`,
    );
  const regions = restorable.restorableLocations.filter((l) => !l.deletionTime).map((l) => l.location);
  if (!regions.some((r) => sameRegion(r, region)))
    problems.push(`${region} is not a restorable region of the account (${regions.join(', ') || 'none'})`);
  let nameTaken: boolean;
  try {
    nameTaken = await deps.cosmos.accountNameExists(subscriptionId, target, {
      abortSignal: deps.abortSignal,
    });
  } catch (error) {
    return unreadable(subject, 'drill.restoreRequest', `whether the account name ${target} is free`, error);
  }
  if (nameTaken)
    problems.push(
      `the account name ${target} is taken (account names are global): choose drill.targetAccountName`,
    );
  return {
    subject,
    code: 'drill.restoreRequest',
    status: problems.length > 0 ? 'failed' : 'ok',
    title:
      problems.length > 0
        ? `${account.name}: the restore drill found a request that would fail`
        : `${account.name}: a restore to ${isoSeconds(restoreTime)} would be accepted`,
    detail:
      problems.length > 0
        ? `The point-in-time restore request would be refused: ${problems.join('; ')}.`
        : `A point-in-time restore of ${account.name} to ${isoSeconds(restoreTime)} into a new account ${target} in ${region} names a restorable source, a time inside the window, a restorable region and a free name. It was not sent.`,
    facts: {
      account: account.name,
      targetAccount: target,
      region,
      restoreTime: isoSeconds(restoreTime),
      earliestRestorableTime: isoSeconds(restorable.oldestRestorableTime!),
      sent: false,
    },
    evidence: { request },
    ...(problems.length > 0
      ? {
          action: {
            summary: 'Fix what the drill found before a restore is needed.',
            runbook: runbookLink(deps.checks, RUNBOOKS.cosmosRestore),
          },
        }
      : {}),
  };
}
