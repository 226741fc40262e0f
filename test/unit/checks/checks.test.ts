import { describe, expect, it } from 'vitest';
import { checkBackupReadiness } from '../../../src/lib/checks/backupReadiness';
import { checkCredentialHygiene } from '../../../src/lib/checks/credentialHygiene';
import { checkPlatformVersions, type RuntimeSupportData } from '../../../src/lib/checks/platformVersions';
import { checkQuotaHeadroom, suggestedLimit } from '../../../src/lib/checks/quotaHeadroom';
import { parsePolicy } from '../../../src/lib/config/policy';
import { ForbiddenError } from '../../../src/lib/core/errors';
import type { KubernetesVersionView } from '../../../src/lib/ports/inventory';
import { MemoryVault } from '../../support/fakes';
import { FakeCosmos, FakeKubernetes, FakeQuotas, transient } from './fakes';

const SUB = '00000000-0000-0000-0000-000000000000';
const NOW = new Date('2026-03-01T12:00:00Z');
const cosmosId = (n: string) =>
  `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.DocumentDB/databaseAccounts/${n}`;
const aksId = (n: string) =>
  `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/${n}`;
const VAULT = 'https://kv-one.vault.azure.net';

const policy = parsePolicy(`version: 1
secrets:
  - vault: kv-one
    name: cosmos-key
    owner: o
    rotation: { provider: cosmosDbKeys, resourceId: ${cosmosId('cosmos-keys')} }
checks:
  runbookBaseUrl: https://example.org/runbooks/
  backupReadiness:
    cosmosDbAccounts:
      - { resourceId: ${cosmosId('cosmos-periodic')}, minRetentionHours: 24, redundancy: [Geo, Zone] }
      - { resourceId: ${cosmosId('cosmos-pitr')}, drill: { hoursAgo: 2 } }
      - { resourceId: ${cosmosId('cosmos-gone')} }
  quotaHeadroom:
    quotas:
      - { subscriptionId: ${SUB}, provider: Microsoft.Compute, location: westeurope, names: [standardDSv3Family, cores, availabilitySets, typoFamily] }
      - { subscriptionId: ${SUB}, provider: Microsoft.Network, location: westeurope, names: [PublicIPAddresses] }
  platformVersions:
    aksClusters: [${aksId('aks-new')}, ${aksId('aks-old')}, ${aksId('aks-lts')}, ${aksId('aks-broken')}]
    runtime: { warnDaysBeforeEnd: 90, maxDataAgeDays: 60 }
  credentialHygiene:
    vaults: [kv-one, kv-down]
    maxValidityDays: 365
    cosmosDbAccounts:
      - { resourceId: ${cosmosId('cosmos-keys')} }
      - { resourceId: ${cosmosId('cosmos-entra')} }
      - { resourceId: ${cosmosId('cosmos-legacy')}, keyAuthReason: a batch job cannot use Entra ID }
`);
const checks = policy.checks;

function cosmosEstate() {
  const cosmos = new FakeCosmos();
  cosmos.accounts.set(cosmosId('cosmos-periodic'), {
    resourceId: cosmosId('cosmos-periodic'),
    name: 'cosmos-periodic',
    location: 'West Europe',
    instanceId: '11111111-1111-4111-8111-111111111111',
    backup: { type: 'Periodic', intervalMinutes: 240, retentionHours: 8, redundancy: 'Local' },
    disableLocalAuth: false,
    locations: ['West Europe'],
  });
  cosmos.accounts.set(cosmosId('cosmos-pitr'), {
    resourceId: cosmosId('cosmos-pitr'),
    name: 'cosmos-pitr',
    location: 'West Europe',
    instanceId: '22222222-2222-4222-8222-222222222222',
    backup: { type: 'Continuous', tier: 'Continuous7Days' },
    disableLocalAuth: true,
    locations: ['West Europe'],
  });
  cosmos.restorable.set('22222222-2222-4222-8222-222222222222', {
    sourceId: `/subscriptions/${SUB}/providers/Microsoft.DocumentDB/locations/West Europe/restorableDatabaseAccounts/22222222-2222-4222-8222-222222222222`,
    instanceId: '22222222-2222-4222-8222-222222222222',
    accountName: 'cosmos-pitr',
    location: 'West Europe',
    apiType: 'Sql',
    creationTime: new Date('2025-01-01T00:00:00Z'),
    oldestRestorableTime: new Date('2026-02-22T12:00:00Z'),
    deletionTime: undefined,
    restorableLocations: [{ location: 'West Europe' }],
  });
  return cosmos;
}

describe('backup readiness', () => {
  it('fails a periodic policy below expectations, says a restore needs a support case, and reads the unreadable as unknown', async () => {
    // Prepare
    const cosmos = cosmosEstate();

    // Act
    const findings = await checkBackupReadiness(checks.backupReadiness!, { cosmos, now: NOW, checks });

    // Assess
    const periodic = findings.filter((f) => f.subject === cosmosId('cosmos-periodic'));
    expect(periodic.map((f) => [f.code, f.status])).toEqual([
      ['backup.policy', 'failed'],
      ['backup.restoreProcess', 'ok'],
    ]);
    expect(periodic[0]!.detail).toContain('kept 8 hours (at least 24)');
    expect(periodic[0]!.detail).toContain('Local storage (expected Geo or Zone)');
    expect(periodic[1]!.action).toEqual({
      summary: 'When data must be restored, follow the runbook (support case).',
      runbook: 'https://example.org/runbooks/cosmos-db-restore.md',
    });
    expect(periodic[0]!.facts.oldestBackupAbout).toBe('2026-03-01T04:00:00Z');
    const gone = findings.find((f) => f.subject === cosmosId('cosmos-gone'))!;
    expect(gone.status).toBe('unknown');
    expect(gone.facts.error).toBe('NotFound');
  });

  it('gives the earliest restorable time of a continuous account and drills a valid restore request without sending it', async () => {
    // Prepare
    const cosmos = cosmosEstate();

    // Act
    const findings = await checkBackupReadiness(checks.backupReadiness!, { cosmos, now: NOW, checks });

    // Assess
    const pitr = findings.filter((f) => f.subject === cosmosId('cosmos-pitr'));
    expect(pitr.map((f) => [f.code, f.status])).toEqual([
      ['backup.restoreWindow', 'ok'],
      ['drill.restoreRequest', 'ok'],
    ]);
    expect(pitr[0]!.facts.earliestRestorableTime).toBe('2026-02-22T12:00:00Z');
    expect(pitr[1]!.facts).toMatchObject({
      targetAccount: 'cosmos-pitr-restore',
      restoreTime: '2026-03-01T10:00:00Z',
      sent: false,
    });
    expect(pitr[1]!.evidence).toEqual({
      request: {
        method: 'PUT',
        path: `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-pitr-restore`,
        body: {
          location: 'West Europe',
          kind: 'GlobalDocumentDB',
          properties: {
            databaseAccountOfferType: 'Standard',
            createMode: 'Restore',
            locations: [{ locationName: 'West Europe', failoverPriority: 0 }],
            restoreParameters: {
              restoreMode: 'PointInTime',
              restoreSource: `/subscriptions/${SUB}/providers/Microsoft.DocumentDB/locations/West Europe/restorableDatabaseAccounts/22222222-2222-4222-8222-222222222222`,
              restoreTimestampInUtc: '2026-03-01T10:00:00Z',
            },
          },
        },
      },
    });
    // Only reads: the account, its restorable account, the name check.
    expect(
      cosmos.calls.filter((c) => c.includes('pitr') || c.startsWith('restorable') || c.startsWith('name')),
    ).toEqual([
      `get ${cosmosId('cosmos-pitr')}`,
      'restorable West Europe 22222222-2222-4222-8222-222222222222',
      'name cosmos-pitr-restore',
    ]);
  });

  it('fails a drill whose time is outside the window, whose name is taken, or a continuous account with no restorable account', async () => {
    // Prepare
    const cosmos = cosmosEstate();
    cosmos.takenNames.add('cosmos-pitr-restore');
    const late = parsePolicy(`version: 1
checks:
  backupReadiness:
    cosmosDbAccounts: [{ resourceId: ${cosmosId('cosmos-pitr')}, drill: { hoursAgo: 400, location: northeurope } }]
`).checks;
    const lost = cosmosEstate();
    lost.restorable.clear();

    // Act
    const [, drill] = await checkBackupReadiness(late.backupReadiness!, { cosmos, now: NOW, checks: late });
    const [window] = await checkBackupReadiness(late.backupReadiness!, {
      cosmos: lost,
      now: NOW,
      checks: late,
    });

    // Assess
    expect(drill!.status).toBe('failed');
    expect(drill!.detail).toContain(
      'the restore time 2026-02-12T20:00:00Z is before the earliest restorable time 2026-02-22T12:00:00Z',
    );
    expect(drill!.detail).toContain('northeurope is not a restorable region of the account (West Europe)');
    expect(drill!.detail).toContain('the account name cosmos-pitr-restore is taken');
    expect(window!.status).toBe('failed');
    expect(window!.title).toBe('cosmos-pitr: no point-in-time restore available');
  });
});

describe('quota headroom', () => {
  it('warns and fails at the thresholds with what to request, and never reads a missing quota as ok', async () => {
    // Prepare
    const quotas = new FakeQuotas();
    quotas.scopes.set('Microsoft.Compute/westeurope', [
      {
        name: 'standardDSv3Family',
        displayName: 'Standard DSv3 Family vCPUs',
        usage: 44,
        limit: 50,
        unit: 'Count',
        adjustable: true,
      },
      {
        name: 'cores',
        displayName: 'Total Regional vCPUs',
        usage: 97,
        limit: 100,
        unit: 'Count',
        adjustable: true,
      },
      {
        name: 'availabilitySets',
        displayName: undefined,
        usage: 2,
        limit: 2500,
        unit: 'Count',
        adjustable: false,
      },
    ]);
    quotas.scopes.set('Microsoft.Network/westeurope', transient());

    // Act
    const findings = await checkQuotaHeadroom(checks.quotaHeadroom!, { quotas, checks });

    // Assess
    expect(findings.map((f) => [f.subject, f.status])).toEqual([
      ['Microsoft.Compute/westeurope/standardDSv3Family', 'warning'],
      ['Microsoft.Compute/westeurope/cores', 'failed'],
      ['Microsoft.Compute/westeurope/availabilitySets', 'ok'],
      ['Microsoft.Compute/westeurope/typoFamily', 'unknown'],
      ['Microsoft.Network/westeurope/PublicIPAddresses', 'unknown'],
    ]);
    expect(findings[0]!.facts).toMatchObject({ usage: 44, limit: 50, percent: 88, suggestedLimit: 88 });
    expect(findings[0]!.action!.summary).toContain(
      'Request a limit of 88 for standardDSv3Family in westeurope',
    );
    expect(findings[0]!.action!.runbook).toBe('https://example.org/runbooks/quota-increase.md');
    expect(findings[1]!.facts.suggestedLimit).toBe(194);
    expect(findings[3]!.detail).toContain('answered no quota named typoFamily');
  });

  it('sends a quota the API cannot raise to a support request', async () => {
    // Prepare
    const quotas = new FakeQuotas();
    quotas.scopes.set('Microsoft.Compute/westeurope', [
      {
        name: 'cores',
        displayName: 'Total Regional vCPUs',
        usage: 90,
        limit: 100,
        unit: 'Count',
        adjustable: false,
      },
    ]);
    const one = parsePolicy(`version: 1
checks:
  quotaHeadroom:
    quotas: [{ subscriptionId: ${SUB}, provider: Microsoft.Compute, location: westeurope, names: [cores] }]
`).checks;

    // Act
    const [finding] = await checkQuotaHeadroom(one.quotaHeadroom!, { quotas, checks: one });

    // Assess
    expect(finding!.status).toBe('warning');
    expect(finding!.action!.summary).toMatch(
      /^cores cannot be raised through the Quota API: open a support request/,
    );
    expect(suggestedLimit(90, 100, 50)).toBe(180);
    expect(suggestedLimit(10, 100, 50)).toBe(101);
  });
});

const CATALOG: KubernetesVersionView[] = [
  {
    minor: '1.31',
    patches: ['1.31.13'],
    isPreview: false,
    isDefault: false,
    supportPlans: ['AKSLongTermSupport'],
  },
  {
    minor: '1.32',
    patches: ['1.32.7', '1.32.9'],
    isPreview: false,
    isDefault: false,
    supportPlans: ['KubernetesOfficial', 'AKSLongTermSupport'],
  },
  {
    minor: '1.33',
    patches: ['1.33.3', '1.33.5'],
    isPreview: false,
    isDefault: true,
    supportPlans: ['KubernetesOfficial'],
  },
  {
    minor: '1.34',
    patches: ['1.34.1'],
    isPreview: true,
    isDefault: false,
    supportPlans: ['KubernetesOfficial'],
  },
];
const SUPPORT: RuntimeSupportData = {
  checkedOn: '2025-12-01',
  sources: ['https://example.org/support'],
  node: [
    { major: 20, endOfSupport: '2026-04-30' },
    { major: 22, endOfSupport: '2027-04-30' },
  ],
  extensionBundle: [
    { major: 3, endOfSupport: '2026-02-01' },
    { major: 4, endOfSupport: null },
  ],
};

function kubernetesEstate() {
  const kubernetes = new FakeKubernetes();
  kubernetes.versions = CATALOG;
  const cluster = (name: string, version: string, pool: string) => ({
    cluster: {
      resourceId: aksId(name),
      name,
      location: 'westeurope',
      version,
      nodePools: [{ name: 'nodepool1', version: pool }],
    },
    profile: {
      controlPlane: { version, upgrades: [{ version: '1.33.5', isPreview: false }] },
      nodePools: [{ name: 'nodepool1', version: pool, upgrades: [{ version: '1.33.5', isPreview: false }] }],
    },
  });
  kubernetes.clusters.set(aksId('aks-new'), cluster('aks-new', '1.33.5', '1.33.3'));
  kubernetes.clusters.set(aksId('aks-old'), cluster('aks-old', '1.30.4', '1.32.7'));
  kubernetes.clusters.set(aksId('aks-lts'), cluster('aks-lts', '1.31.13', '1.31.13'));
  kubernetes.clusters.set(
    aksId('aks-broken'),
    new ForbiddenError('reading AKS cluster: access denied (403 AuthorizationFailed)'),
  );
  return kubernetes;
}

describe('platform version support', () => {
  it('tells supported, oldest, long-term-only and unsupported versions apart, and reads the region once', async () => {
    // Prepare
    const kubernetes = kubernetesEstate();

    // Act
    const findings = await checkPlatformVersions(checks.platformVersions!, {
      kubernetes,
      runtime: {
        node: '22.12.0',
        extensionBundle: { id: 'Microsoft.Azure.Functions.ExtensionBundle', version: '[4.*, 5.0.0)' },
      },
      now: NOW,
      checks,
      support: SUPPORT,
    });

    // Assess
    const aks = findings
      .filter((f) => f.code === 'aks.version')
      .map((f) => [f.facts.cluster ?? f.subject, f.facts.part ?? null, f.status]);
    expect(aks).toEqual([
      ['aks-new', 'control plane', 'ok'],
      ['aks-new', 'node pool nodepool1', 'ok'],
      ['aks-old', 'control plane', 'failed'],
      ['aks-old', 'node pool nodepool1', 'warning'],
      ['aks-lts', 'control plane', 'warning'],
      ['aks-lts', 'node pool nodepool1', 'warning'],
      [aksId('aks-broken'), null, 'unknown'],
    ]);
    const old = findings.find((f) => f.facts.cluster === 'aks-old' && f.facts.part === 'control plane')!;
    expect(old.title).toBe('aks-old control plane: Kubernetes 1.30.4 is no longer supported');
    expect(old.action!.summary).toContain('--kubernetes-version 1.33.5');
    expect(
      findings.find((f) => f.facts.cluster === 'aks-old' && f.facts.part !== 'control plane')!.title,
    ).toContain('oldest supported minor');
    expect(findings.find((f) => f.facts.cluster === 'aks-lts')!.title).toContain('long-term support');
    expect(kubernetes.versionCalls).toBe(1);
  });

  it('checks Node and the extension bundle against the support data, and reports the data stale', async () => {
    // Prepare
    const kubernetes = new FakeKubernetes();
    const none = parsePolicy(`version: 1
checks:
  platformVersions: { runtime: { warnDaysBeforeEnd: 90, maxDataAgeDays: 60 } }
`).checks;

    // Act
    const run = (node: string, bundle?: string) =>
      checkPlatformVersions(none.platformVersions!, {
        kubernetes,
        runtime: {
          node,
          ...(bundle
            ? { extensionBundle: { id: 'Microsoft.Azure.Functions.ExtensionBundle', version: bundle } }
            : {}),
        },
        now: NOW,
        checks: none,
        support: SUPPORT,
      });
    const current = await run('22.12.0', '[4.*, 5.0.0)');
    const aging = await run('20.18.1', '[3.3.0, 4.0.0)');
    const unknown = await run('24.1.0');

    // Assess
    const byCode = (findings: typeof current) => Object.fromEntries(findings.map((f) => [f.code, f.status]));
    expect(byCode(current)).toEqual({
      'runtime.supportData': 'warning',
      'runtime.node': 'ok',
      'runtime.extensionBundle': 'ok',
    });
    expect(current[0]!.detail).toContain('last checked 90 days ago, more than the 60 days');
    expect(byCode(aging)).toMatchObject({ 'runtime.node': 'warning', 'runtime.extensionBundle': 'failed' });
    expect(aging.find((f) => f.code === 'runtime.node')!.title).toBe(
      'Node 20.18.1: support ends on 2026-04-30 (59 days)',
    );
    expect(byCode(unknown)).toMatchObject({
      'runtime.node': 'warning',
      'runtime.extensionBundle': 'warning',
    });
    expect(unknown.find((f) => f.code === 'runtime.node')!.title).toBe(
      'Node 24.1.0: not in the support data',
    );
  });
});

describe('credential hygiene', () => {
  it('finds secrets without expiry or valid too long (metadata only), and Cosmos DB accounts still taking keys', async () => {
    // Prepare
    const vault = new MemoryVault();
    vault.add({
      vaultUrl: VAULT,
      name: 'forever',
      createdOn: new Date('2025-01-01T00:00:00Z'),
      enabled: true,
    });
    vault.add({
      vaultUrl: VAULT,
      name: 'ten-years',
      createdOn: new Date('2025-01-01T00:00:00Z'),
      expiresOn: new Date('2035-01-01T00:00:00Z'),
      enabled: true,
    });
    vault.add({
      vaultUrl: VAULT,
      name: 'fine',
      createdOn: new Date('2026-01-01T00:00:00Z'),
      expiresOn: new Date('2026-06-01T00:00:00Z'),
      enabled: true,
    });
    vault.add({
      vaultUrl: VAULT,
      name: 'disabled-forever',
      createdOn: new Date('2025-01-01T00:00:00Z'),
      enabled: false,
    });
    const brokenVault = Object.assign(vault, {
      listSecrets: async function* (vaultUrl: string) {
        if (vaultUrl.includes('kv-down')) throw transient();
        for (const v of vault.versions) if (v.properties.vaultUrl === vaultUrl) yield v.properties;
      },
    });
    const cosmos = new FakeCosmos();
    for (const [name, disabled] of [
      ['cosmos-keys', false],
      ['cosmos-entra', true],
      ['cosmos-legacy', false],
    ] as const) {
      cosmos.accounts.set(cosmosId(name), {
        resourceId: cosmosId(name),
        name,
        location: 'westeurope',
        instanceId: undefined,
        backup: { type: 'Periodic', intervalMinutes: 240, retentionHours: 8, redundancy: 'Geo' },
        disableLocalAuth: disabled,
        locations: [],
      });
    }

    // Act
    const findings = await checkCredentialHygiene(checks.credentialHygiene!, {
      vault: brokenVault,
      cosmos,
      policy,
      now: NOW,
      checks,
    });

    // Assess
    expect(findings.map((f) => [f.subject, f.code, f.status])).toEqual([
      ['vaults/kv-one', 'secret.expiry', 'ok'],
      ['vaults/kv-one/secrets/forever', 'secret.noExpiry', 'warning'],
      ['vaults/kv-one/secrets/ten-years', 'secret.longExpiry', 'warning'],
      ['vaults/kv-down', 'secret.expiry', 'unknown'],
      [cosmosId('cosmos-keys'), 'cosmos.keyAuth', 'warning'],
      [cosmosId('cosmos-entra'), 'cosmos.keyAuth', 'ok'],
      [cosmosId('cosmos-legacy'), 'cosmos.keyAuth', 'ok'],
    ]);
    expect(findings[0]!.title).toBe('kv-one: 4 secret(s) checked, 2 with an expiry problem');
    expect(findings[2]!.facts.validDays).toBe(3652);
    expect(findings[4]!.detail).toContain('stampkeeper rotates them for kv-one/cosmos-key');
    expect(findings[6]!.facts.accepted).toBe('a batch job cannot use Entra ID');
    expect(JSON.stringify(findings)).not.toContain('not-a-real-secret');
  });
});
