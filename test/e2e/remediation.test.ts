/**
 * Guarded remediation end to end, on the bundle the app deploys, on the local host and the default
 * scenario with the bundled policy (what `npm start` runs): the sandbox's load throttles the orders
 * container and backs up the orders queue, its metric alert rules fire and its action group posts
 * them (some twice) to POST /api/alerts; the playbooks raise the container's autoscale max and the
 * namespace's messaging units through ARM, verify the metrics recover, and once the load is gone
 * and the metrics stayed low for the playbooks' window, the scale-back timer lowers both again.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RunningLocalApp, startLocalApp } from '../../src/local/app';
import type { HostLogger } from '../../src/local/host/types';
import { appBundle } from '../support/bundle';
import { storageConnectionString, uniquePrefix } from '../support/storage';

const START = '2026-01-01T00:00:00Z';

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

async function start(): Promise<RunningLocalApp> {
  const bundle = appBundle();
  const prefix = uniquePrefix('x');
  return startLocalApp({
    appEntry: bundle.entry,
    appRoot: bundle.root,
    port: 0,
    startTimers: false,
    logger,
    env: {
      AzureWebJobsStorage: storageConnectionString(),
      STAMPKEEPER_TABLE_PREFIX: prefix,
      STAMPKEEPER_WORK_QUEUE: `${prefix}-work`,
    },
  });
}

async function json(
  current: RunningLocalApp,
  path: string,
  init?: RequestInit,
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are read freely in assertions
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${current.url}${path}`, init);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

const advance = (current: RunningLocalApp, by: Record<string, number | string>) =>
  json(current, '/sandbox/clock/advance', { method: 'POST', body: JSON.stringify(by) });

const over = (run: { state: string } | undefined) =>
  run !== undefined && ['succeeded', 'failed', 'cancelled'].includes(run.state);

/** The playbook's runs, newest first. */
async function runsOf(current: RunningLocalApp, playbook: string) {
  const answer = await json(current, `/api/remediations?playbook=${playbook}&limit=20`);
  expect(answer.status).toBe(200);
  return answer.body.runs as Array<{
    id: string;
    state: string;
    steps: Array<{ name: string; output?: unknown }>;
  }>;
}

/**
 * Moves the sandbox clock a minute at a time (letting the app's runs work in between) until
 * `done` holds, or gives up after `maxMinutes` of sandbox time.
 */
async function until(current: RunningLocalApp, done: () => Promise<boolean>, maxMinutes: number) {
  for (let minute = 0; minute <= maxMinutes; minute++) {
    for (let i = 0; i < 4; i++) {
      if (await done()) return;
      await new Promise((r) => setTimeout(r, 150));
    }
    await advance(current, { minutes: 1 });
  }
  const alerts = (await json(current, '/sandbox/alerts')).body;
  throw new Error(
    `the remediation did not get there in time: ${JSON.stringify(alerts)} ${logs.slice(-30).join('\n')}`,
  );
}

function estate(body: {
  arm: {
    cosmosThroughput: Array<{ container: string | null; value: number }>;
    serviceBusNamespaces: Array<{ name: string; sku: { capacity: number } }>;
  };
}) {
  return {
    ru: body.arm.cosmosThroughput.find((o) => o.container === 'orders')?.value,
    units: body.arm.serviceBusNamespaces.find((n) => n.name === 'stampkeeper-sandbox-sb')?.sku.capacity,
  };
}

describe('guarded remediation on npm start (the bundle, the default scenario, the bundled policy)', () => {
  it('load -> alerts -> scale up -> recovery -> load drops -> scale back, for the container and the queue', async () => {
    // Prepare
    app = await start();
    const before = estate((await json(app, '/sandbox/estate')).body);

    // Act 1: the container throttles from +1h, the queue backs up from +1h30m.
    await advance(app, { minutes: 60 });
    await until(app, async () => over((await runsOf(app!, 'orders-container-ru'))[0]), 60);
    await until(app, async () => over((await runsOf(app!, 'orders-messaging-units'))[0]), 90);
    const raised = estate((await json(app, '/sandbox/estate')).body);
    const raiseRuns = {
      ru: (await runsOf(app, 'orders-container-ru'))[0]!,
      units: (await runsOf(app, 'orders-messaging-units'))[0]!,
    };

    // Act 2: the load drops (+2h, +3h); the metrics stay low for the playbooks' hour; the timer ticks.
    await advance(app, { to: '2026-01-01T04:20:00Z' });
    const tick = await fetch(`${app.url}/admin/functions/remediationScaleBack`, {
      method: 'POST',
      body: '{}',
    });
    await until(
      app,
      async () => {
        const [ru, units] = [
          await runsOf(app!, 'orders-container-ru'),
          await runsOf(app!, 'orders-messaging-units'),
        ];
        return ru.length === 2 && units.length === 2 && over(ru[0]) && over(units[0]);
      },
      30,
    );
    const lowered = estate((await json(app, '/sandbox/estate')).body);
    const alerts = (await json(app, '/sandbox/alerts')).body;
    const audit = await json(app, `/api/audit?since=${START}&limit=1000`);
    const notifications = (await json(app, '/sandbox/notifications')).body;

    // Assess: raised by one step each, recovered, lowered back to the floor.
    expect(before).toEqual({ ru: 1000, units: 1 });
    expect(raised).toEqual({ ru: 2000, units: 2 });
    expect(raiseRuns.ru.state).toBe('succeeded');
    expect(raiseRuns.ru.steps.find((s) => s.name === 'verify')?.output).toMatchObject({ recovered: true });
    expect(raiseRuns.units.state).toBe('succeeded');
    expect(raiseRuns.units.steps.find((s) => s.name === 'verify')?.output).toMatchObject({ recovered: true });
    expect(tick.status).toBe(202);
    expect(lowered).toEqual({ ru: 1000, units: 1 });

    // The action group's deliveries: one Fired per rule, each answered 202 with its run; a redelivery
    // answered 200 duplicate; the episodes resolved once the raise took effect.
    const deliveries = alerts.deliveries as Array<{
      rule: string;
      monitorCondition: string;
      duplicate: boolean;
      status: number;
      answer?: { status: string; runId?: string };
    }>;
    for (const rule of ['cosmos-ru-orders', 'sb-backlog-orders']) {
      const fired = deliveries.filter(
        (d) => d.rule === rule && d.monitorCondition === 'Fired' && !d.duplicate,
      );
      expect(fired).toHaveLength(1);
      expect(fired[0]).toMatchObject({ status: 202, answer: { status: 'accepted' } });
      expect(deliveries.some((d) => d.rule === rule && d.monitorCondition === 'Resolved')).toBe(true);
    }
    expect(
      deliveries.find((d) => d.rule === 'cosmos-ru-orders' && d.monitorCondition === 'Fired')?.answer?.runId,
    ).toBe(raiseRuns.ru.id);
    for (const again of deliveries.filter((d) => d.duplicate)) expect(again).toMatchObject({ status: 200 });
    expect(alerts.rules.map((r: { state: string }) => r.state)).toEqual(['ok', 'ok']);

    // Audited with before and after, once per change (duplicates acted on nothing more).
    const changes = (
      audit.body.records as Array<{
        action: string;
        outcome: string;
        target: string;
        before?: { value?: number };
        after?: { value?: number };
      }>
    )
      .filter(
        (r) => ['remediation.raise', 'remediation.lower'].includes(r.action) && r.outcome === 'succeeded',
      )
      .map((r) => [r.action, r.before?.value, r.after?.value])
      .sort((a, b) => String(a).localeCompare(String(b)));
    expect(changes).toEqual([
      ['remediation.lower', 2, 1],
      ['remediation.lower', 2000, 1000],
      ['remediation.raise', 1, 2],
      ['remediation.raise', 1000, 2000],
    ]);
    // The channels heard what was done and on what.
    const titles = JSON.stringify(notifications);
    expect(titles).toContain('Raised');
    expect(titles).toContain('stampkeeper-sandbox-sb');
    expect(titles).toContain('orders');
  }, 300_000);
});
