/**
 * With `STAMPKEEPER_LOCAL_REQUIRE_KEYS=true` the host wants a key on its Event Grid webhook, as in
 * Azure, where a subscription's endpoint URL carries the `eventgrid_extension` system key
 * (`...&code=<key>`). The sandbox's own subscription must present it the same way: its deliveries
 * are accepted and handled, and the key shows nowhere (logs, inspection views, responses).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningLocalApp } from '../../src/local/app';
import type { HostLogger } from '../../src/local/host/types';
import { startBundledApp } from './support/localApp';

const COSMOS = 'cosmos-primary-key';
const COSMOS_TARGET = `vaults/stampkeeper-sandbox/secrets/${COSMOS}`;

const logs: string[] = [];
const logger: HostLogger = {
  info: (m) => logs.push(m),
  warn: (m) => logs.push(m),
  error: (m) => logs.push(m),
};
const consoleMethods = ['log', 'info', 'warn', 'error', 'debug'] as const;
const originalConsole = consoleMethods.map((m) => [m, console[m]] as const);

beforeAll(() => {
  for (const m of consoleMethods) console[m] = (...args: unknown[]) => logs.push(args.map(String).join(' '));
});
afterAll(() => {
  for (const [m, original] of originalConsole) console[m] = original as never;
});

let app: RunningLocalApp | undefined;
afterEach(async () => {
  await app?.stop();
  app = undefined;
  logs.length = 0;
});

const newKey = (label: string) => `${label}-${randomBytes(16).toString('hex')}`;

async function startWithKeys(keys: Record<string, string>): Promise<RunningLocalApp> {
  return startBundledApp({
    prefix: 'k',
    logger,
    env: { STAMPKEEPER_LOCAL_REQUIRE_KEYS: 'true', ...keys },
    // No deliberate duplicates: one delivery per event.
    sandbox: { random: () => 0.99 },
  });
}

/** Advances the sandbox clock past cosmos-primary-key's 30-day mark and collects every view. */
async function raiseNearExpiry(current: RunningLocalApp, masterKey: string) {
  const texts: string[] = [];
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const response = await fetch(`${current.url}${path}`, { headers });
    const text = await response.text();
    texts.push(text);
    return { status: response.status, text };
  };
  const advanced = await fetch(`${current.url}/sandbox/clock/advance`, {
    method: 'POST',
    body: JSON.stringify({ days: 16 }),
  });
  texts.push(await advanced.text());
  await get('/sandbox/events');
  await get('/sandbox/notifications');
  await get('/sandbox/estate');
  const audit = await get(
    `/api/audit?since=2026-01-01T00:00:00Z&target=${encodeURIComponent(COSMOS_TARGET)}`,
    {
      'x-functions-key': masterKey,
    },
  );
  const sandbox = current.sandbox!;
  texts.push(JSON.stringify(sandbox.deliveries()), JSON.stringify(sandbox.eventGrid.undelivered()));
  return {
    advanceStatus: advanced.status,
    audit,
    deliveries: sandbox.deliveries().filter((d) => d.subject === COSMOS),
    undelivered: sandbox.eventGrid.undelivered(),
    published: sandbox.eventGrid.published().filter((p) => p.event.subject === COSMOS_TARGET),
    everything: [...logs, ...texts].join('\n'),
  };
}

describe('Event Grid deliveries of the sandbox when the host requires keys', () => {
  it('present the eventgrid_extension system key: delivered (202) and handled, the key shown nowhere', async () => {
    // Prepare
    const masterKey = newKey('master');
    const eventGridKey = newKey('eventgrid');
    app = await startWithKeys({
      STAMPKEEPER_LOCAL_MASTER_KEY: masterKey,
      STAMPKEEPER_LOCAL_EVENTGRID_KEY: eventGridKey,
    });
    const unkeyed = await fetch(`${app.url}/runtime/webhooks/eventgrid?functionName=keyVaultEvents`, {
      method: 'POST',
      body: '[]',
      headers: { 'aeg-event-type': 'Notification' },
    });
    // Act
    const seen = await raiseNearExpiry(app, masterKey);
    // Assess: keys are really required, and the sandbox's delivery passed.
    expect(unkeyed.status).toBe(401);
    expect(seen.advanceStatus).toBe(200);
    expect(seen.deliveries.map((d) => [d.status, d.outcome])).toEqual([[202, 'delivered']]);
    expect(seen.undelivered).toEqual([]);
    expect(seen.audit.status).toBe(200);
    const records = JSON.parse(seen.audit.text).records as Array<{ action: string; outcome: string }>;
    expect(records.filter((r) => r.action.startsWith('secret.'))).toEqual([
      expect.objectContaining({ action: 'secret.nearExpiry.notify', outcome: 'succeeded' }),
    ]);
    expect(seen.published).toHaveLength(1);
    expect(seen.everything).toContain(COSMOS);
    expect(seen.everything).not.toContain(eventGridKey);
    expect(seen.everything).not.toContain(masterKey);
  });

  it('present the master key when no system key is set (the host accepts it for the webhook)', async () => {
    // Prepare
    const masterKey = newKey('master');
    app = await startWithKeys({ STAMPKEEPER_LOCAL_MASTER_KEY: masterKey });
    // Act
    const seen = await raiseNearExpiry(app, masterKey);
    // Assess
    expect(seen.deliveries.map((d) => [d.status, d.outcome])).toEqual([[202, 'delivered']]);
    expect(seen.undelivered).toEqual([]);
    expect(seen.published).toHaveLength(1);
    expect(seen.everything).not.toContain(masterKey);
  });
});
