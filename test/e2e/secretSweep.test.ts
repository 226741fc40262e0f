/**
 * The safety net end to end: Key Vault's events are lost (the sandbox has no Event Grid
 * subscription), so only the sweep timer can find the secret past its 30-day mark. Run through the
 * local host's admin API, twice: one audit record, one notification per channel.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningLocalApp, startLocalApp } from '../../src/local/app';
import { parseScenario } from '../../src/local/sandbox';
import { storageConnectionString, uniquePrefix } from '../support/storage';

const TARGET = 'vaults/stampkeeper-sandbox/secrets/cosmos-primary-key';

describe('secret sweep on the sandbox, end to end', () => {
  let app: RunningLocalApp;

  async function auditFor(
    target: string,
  ): Promise<Array<{ action: string; actor: string; outcome: string }>> {
    const response = await fetch(
      `${app.url}/api/audit?since=2025-12-15T00:00:00Z&target=${encodeURIComponent(target)}`,
    );
    expect(response.status).toBe(200);
    return ((await response.json()) as { records: Array<{ action: string; actor: string; outcome: string }> })
      .records;
  }

  async function runSweep(): Promise<void> {
    const before = app.host.invoker;
    const response = await fetch(`${app.url}/admin/functions/secretSweep`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(202);
    // The admin API answers before the invocation ends; wait (bounded) until the invoker is idle.
    await waitFor(async () => before.inFlight === 0);
  }

  beforeAll(async () => {
    const scenario = parseScenario(readFileSync('sandbox/default.scenario.yaml', 'utf8'));
    scenario.eventGrid = { subscriptions: [] };
    const prefix = uniquePrefix('w');
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

  it('finds the secret whose event was lost, notifies once, and is a duplicate the second time', async () => {
    // Prepare
    await fetch(`${app.url}/sandbox/clock/advance`, { method: 'POST', body: JSON.stringify({ days: 16 }) });
    expect(app.sandbox!.deliveries()).toEqual([]);
    expect(await auditFor(TARGET)).toEqual([]);
    // Act
    await runSweep();
    await runSweep();
    // Assess
    // The notice of the near expiry, once (the rotation it starts keeps its own run records).
    const records = (await auditFor(TARGET)).filter((r) => r.action.startsWith('secret.'));
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      action: 'secret.nearExpiry.notify',
      actor: 'system:timer',
      outcome: 'succeeded',
    });
    const published = app.sandbox!.eventGrid.published().filter((p) => p.event.subject === TARGET);
    expect(published).toHaveLength(1);
    const unmanaged = await auditFor('vaults/stampkeeper-sandbox/secrets/unmanaged-secret');
    expect(unmanaged).toEqual([expect.objectContaining({ outcome: 'reported', actor: 'system:timer' })]);
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
