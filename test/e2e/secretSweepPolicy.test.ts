/**
 * The sweep against the policy, end to end on the local host and the sandbox: a managed secret
 * whose current version lacks the key tag its rotation reads, and another that is disabled, are
 * reported once (an audit record, a notice to the secret's channels), however many sweeps run; a
 * new version that is fixed is not. Each sweep lists the vault once, and versions only of the
 * secrets inside the window or in disagreement.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningLocalApp, startLocalApp } from '../../src/local/app';
import { parseScenario } from '../../src/local/sandbox';
import { storageConnectionString, uniquePrefix } from '../support/storage';

const VAULT = 'stampkeeper-sandbox';
const STORAGE = `vaults/${VAULT}/secrets/storage-account-key`;
const COSMOS = `vaults/${VAULT}/secrets/cosmos-primary-key`;

interface AuditRecordView {
  action: string;
  actor: string;
  outcome: string;
  target: string;
  reason?: string;
  before?: { version: string; problem: string };
}

describe('secret sweep against the policy, end to end', () => {
  let app: RunningLocalApp;

  async function reports(): Promise<AuditRecordView[]> {
    const response = await fetch(`${app.url}/api/audit?since=2025-12-15T00:00:00Z&limit=1000`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { records: AuditRecordView[] };
    return body.records.filter((r) => r.action === 'secret.policy.report');
  }

  async function runSweep(): Promise<void> {
    const invoker = app.host.invoker;
    const response = await fetch(`${app.url}/admin/functions/secretSweep`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(202);
    await waitFor(async () => invoker.inFlight === 0);
  }

  beforeAll(async () => {
    const scenario = parseScenario(readFileSync('sandbox/default.scenario.yaml', 'utf8'));
    scenario.eventGrid = { subscriptions: [] };
    for (const secret of scenario.keyVault!.vaults![0]!.secrets!) {
      // The storage key's version says neither which key it holds...
      if (secret.name === 'storage-account-key') delete secret.tags!['stampkeeper-key'];
      // ...and the Cosmos DB key is disabled.
      if (secret.name === 'cosmos-primary-key') secret.enabled = false;
    }
    const prefix = uniquePrefix('p');
    app = await startLocalApp({
      port: 0,
      startTimers: false,
      logger: { info: () => {}, warn: () => {}, error: () => {} },
      env: {
        AzureWebJobsStorage: storageConnectionString(),
        STAMPKEEPER_TABLE_PREFIX: prefix,
        STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
      },
      sandbox: { scenario },
    });
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('reports each disagreement once, to the secret channels, with few Key Vault calls', async () => {
    // Prepare
    const estate = app.sandbox!.estate().keyVault.vaults[0]!.secrets;
    const versionOf = (name: string) => estate.find((s) => s.name === name)!.currentVersion;
    const before = app.sandbox!.keyVault.requests().length;

    // Act
    await runSweep();
    const firstSweep = app.sandbox!.keyVault.requests().slice(before);
    await runSweep();
    const after = await reports();

    // Assess
    expect(
      after.map((r) => [r.target, r.before?.version, r.before?.problem, r.outcome, r.actor]).sort(),
    ).toEqual([
      [COSMOS, versionOf('cosmos-primary-key'), 'disabled', 'reported', 'system:timer'],
      [STORAGE, versionOf('storage-account-key'), 'tagsMissing', 'reported', 'system:timer'],
    ]);
    expect(after.find((r) => r.target === STORAGE)!.reason).toContain('stampkeeper-key');
    const published = app
      .sandbox!.eventGrid.published()
      .filter((p) => p.event.type === 'com.stampkeeper.secret.policyDisagreement');
    expect(published.map((p) => p.event.subject).sort()).toEqual([COSMOS, STORAGE]);
    const teams = app
      .sandbox!.webhooks()
      .filter((w) => JSON.stringify(w.body).includes('disagrees with the policy'));
    expect(teams).toHaveLength(2);
    // One page of the vault's listing; versions of the two secrets in their window (the unmanaged
    // one and the certificate's) and of the two in disagreement; nothing else.
    const calls = firstSweep.filter((r) => r.authenticated).map((r) => `${r.method} ${r.path}`);
    expect(calls.sort()).toEqual(
      [
        'GET /secrets',
        'GET /secrets/cosmos-primary-key/versions',
        'GET /secrets/frontend-tls-cert/versions',
        'GET /secrets/storage-account-key/versions',
        'GET /secrets/unmanaged-secret/versions',
      ].sort(),
    );
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
