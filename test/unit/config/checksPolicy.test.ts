import { describe, expect, it } from 'vitest';
import { parsePolicy, validatePolicy } from '../../../src/lib/config/policy';

const SUB = '00000000-0000-0000-0000-000000000000';
const COSMOS = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-a`;
const AKS = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks-a`;
const BUS = `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/sb-a`;
const WORKSPACE = '3f2a4e0c-5b7d-4a1e-9c8b-2d6f0e1a7b94';

function problemsOf(text: string): string[] {
  const result = validatePolicy(text);
  return result.ok ? [] : result.problems;
}

describe('the checks and gates sections of the policy', () => {
  it('fills every default of the checks and gates a policy names, and leaves out the others', () => {
    // Act
    const policy = parsePolicy(`version: 1
checks:
  backupReadiness:
    cosmosDbAccounts: [{ resourceId: ${COSMOS} }]
  quotaHeadroom:
    quotas: [{ subscriptionId: ${SUB}, provider: Microsoft.Compute, location: westeurope, names: [cores] }]
  platformVersions: { aksClusters: [${AKS}] }
  credentialHygiene: { vaults: [Kv-One] }
monitoring:
  workspaces: [{ name: law, workspaceId: ${WORKSPACE} }]
gates:
  - name: stamp-health
    targets: [{ name: weu, region: westeurope, parameters: { role: stamp-weu }, resources: { bus: ${BUS} } }]
    conditions:
      - { name: failures, type: logs, workspace: law, query: "requests | summarize v = 1", column: v, operator: lessThan, threshold: 1 }
      - { name: dead, type: metric, resource: bus, namespace: Microsoft.ServiceBus/namespaces, metric: DeadletteredMessages, aggregation: Maximum, operator: lessThanOrEqual, threshold: 0 }
`);

    // Assess
    expect(policy.checks).toEqual({
      backupReadiness: {
        schedule: '0 0 5 * * *',
        cosmosDbAccounts: [
          {
            resourceId: COSMOS,
            maxIntervalMinutes: 240,
            minRetentionHours: 8,
            drill: { enabled: true, hoursAgo: 1 },
          },
        ],
      },
      quotaHeadroom: {
        schedule: '0 30 5 * * *',
        warnAtPercent: 80,
        criticalAtPercent: 95,
        requestTargetPercent: 50,
        quotas: [
          { subscriptionId: SUB, provider: 'Microsoft.Compute', location: 'westeurope', names: ['cores'] },
        ],
      },
      platformVersions: {
        schedule: '0 0 6 * * 1',
        aksClusters: [AKS],
        runtime: { enabled: true, warnDaysBeforeEnd: 180, maxDataAgeDays: 180 },
      },
      credentialHygiene: {
        schedule: '0 0 7 * * *',
        vaults: ['https://kv-one.vault.azure.net'],
        maxValidityDays: 365,
        cosmosDbAccounts: [],
      },
    });
    expect(policy.gates).toEqual([
      {
        name: 'stamp-health',
        windowMinutes: 15,
        wait: { maxMinutes: 60, intervalSeconds: 60 },
        targets: [
          { name: 'weu', region: 'westeurope', parameters: { role: 'stamp-weu' }, resources: { bus: BUS } },
        ],
        conditions: [
          {
            name: 'failures',
            type: 'logs',
            workspace: 'law',
            query: 'requests | summarize v = 1',
            column: 'v',
            operator: 'lessThan',
            threshold: 1,
            minRows: 1,
          },
          {
            name: 'dead',
            type: 'metric',
            resource: 'bus',
            namespace: 'Microsoft.ServiceBus/namespaces',
            metric: 'DeadletteredMessages',
            aggregation: 'Maximum',
            reduce: 'maximum',
            interval: 'PT1M',
            maxMissingPoints: 0,
            dimensions: [],
            operator: 'lessThanOrEqual',
            threshold: 0,
          },
        ],
        notify: [],
      },
    ]);
  });

  it('reports what the schema cannot: workspaces, resources and regions of targets, duplicates, thresholds, schedules, channels', () => {
    // Act
    const problems = problemsOf(`version: 1
notifications: { channels: [{ name: ops, type: eventGrid }] }
checks:
  backupReadiness:
    schedule: "0 0 25 * * *"
    notify: [pager]
    cosmosDbAccounts: [{ resourceId: ${COSMOS} }, { resourceId: ${COSMOS} }]
  quotaHeadroom:
    warnAtPercent: 90
    criticalAtPercent: 85
    quotas: [{ subscriptionId: ${SUB}, provider: Microsoft.Compute, location: westeurope, names: [cores] }]
monitoring:
  workspaces: [{ name: law, workspaceId: ${WORKSPACE} }, { name: law, workspaceId: ${WORKSPACE} }]
gates:
  - name: g
    targets: [{ name: weu, resources: {} }, { name: weu }]
    conditions:
      - { name: a, type: logs, workspace: nowhere, query: q, column: v, operator: lessThan, threshold: 1 }
      - { name: a, type: metric, resource: bus, namespace: Microsoft.ServiceBus/namespaces, metric: M, aggregation: Total, operator: equal, threshold: 0 }
  - name: g
    targets: [{ name: t, parameters: { role: "x' | take 1 //" } }]
    conditions: [{ name: c, type: logs, workspace: law, query: q, column: v, operator: about, threshold: 1 }]
`);

    // Assess
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^checks\.backupReadiness\.schedule: invalid NCRONTAB: .*hour/),
        expect.stringMatching(/^checks\.backupReadiness\.notify\[0\]: unknown channel "pager"/),
        expect.stringMatching(
          /^checks\.backupReadiness\.cosmosDbAccounts\[1\]: duplicate of cosmosDbAccounts\[0\]/,
        ),
        expect.stringMatching(/^checks\.quotaHeadroom\.criticalAtPercent: must be at least warnAtPercent/),
        expect.stringMatching(/^monitoring\.workspaces\[1\]\.name: duplicate workspace name "law"/),
        expect.stringMatching(/^gates\[0\]\.targets\[1\]\.name: duplicate target "weu"/),
        expect.stringMatching(
          /^gates\[0\]\.conditions\[0\]\.workspace: unknown workspace "nowhere" \(monitoring\.workspaces defines: law\)/,
        ),
        expect.stringMatching(/^gates\[0\]\.conditions\[1\]\.name: duplicate condition "a"/),
        expect.stringMatching(
          /^gates\[0\]\.targets\[0\]\.resources: has no resource "bus" \(conditions\[1\] reads it\)/,
        ),
        expect.stringMatching(
          /^gates\[0\]\.targets\[1\]\.region: is required: conditions\[1\] reads a metric/,
        ),
        expect.stringMatching(/^gates\[1\]\.name: duplicate gate name "g"/),
        expect.stringMatching(
          /^gates\[1\]\.targets\[0\]\.parameters\.role: must be at most 256 letters, digits, spaces .*\(no quotes\)/,
        ),
        expect.stringMatching(
          /^gates\[1\]\.conditions\[0\]\.operator: must be one of: lessThan, lessThanOrEqual/,
        ),
      ]),
    );
  });
});
