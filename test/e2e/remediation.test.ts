/**
 * Guarded remediation end to end, on the bundle the app deploys, on the local host and the default
 * scenario with the bundled policy (what `npm start` runs): the sandbox's load throttles the orders
 * container and backs up the orders queue, its metric alert rules fire and its action group posts
 * them (some twice) to POST /api/alerts; the playbooks raise the container's autoscale max and the
 * namespace's messaging units through ARM, verify the metrics recover, and once the load is gone
 * and the metrics stayed low for the playbooks' window, the scale-back timer lowers both again.
 */
import { describe, expect, it } from 'vitest';
import { advance, json, localAppHooks } from './support/localApp';
import {
  changesOf,
  expectEpisodes,
  over,
  runsOf,
  scaleBackNow,
  until as untilMinutes,
} from './support/remediation';

const START = '2026-01-01T00:00:00Z';

const hooks = localAppHooks({ prefix: 'x' });
const until = (done: () => Promise<boolean>, maxMinutes: number) =>
  untilMinutes(hooks.current()!, hooks.logs, done, maxMinutes);

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
    const app = await hooks.start();
    const before = estate((await json(app, '/sandbox/estate')).body);

    // Act 1: the container throttles from +1h, the queue backs up from +1h30m.
    await advance(app, { minutes: 60 });
    await until(async () => over((await runsOf(app, 'orders-container-ru'))[0]), 60);
    await until(async () => over((await runsOf(app, 'orders-messaging-units'))[0]), 90);
    const raised = estate((await json(app, '/sandbox/estate')).body);
    const raiseRuns = {
      ru: (await runsOf(app, 'orders-container-ru'))[0]!,
      units: (await runsOf(app, 'orders-messaging-units'))[0]!,
    };

    // Act 2: the load drops (+2h, +3h); the metrics stay low for the playbooks' hour; the timer ticks.
    await advance(app, { to: '2026-01-01T04:20:00Z' });
    const tick = await scaleBackNow(app, hooks.logs, ['orders-container-ru', 'orders-messaging-units']);
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
    expect(tick).toBe(202);
    expect(lowered).toEqual({ ru: 1000, units: 1 });

    // The action group's deliveries: one Fired per rule, each answered 202 with its run; a redelivery
    // answered 200 duplicate; the episodes resolved once the raise took effect.
    const deliveries = expectEpisodes(alerts, ['cosmos-ru-orders', 'sb-backlog-orders']);
    expect(
      deliveries.find((d) => d.rule === 'cosmos-ru-orders' && d.monitorCondition === 'Fired')?.answer?.runId,
    ).toBe(raiseRuns.ru.id);

    // Audited with before and after, once per change (duplicates acted on nothing more).
    const changes = changesOf(audit.body.records);
    expect(changes).toEqual([
      ['remediation.lower', 'orders', 2000, 1000],
      ['remediation.lower', 'stampkeeper-sandbox-sb', 2, 1],
      ['remediation.raise', 'orders', 1000, 2000],
      ['remediation.raise', 'stampkeeper-sandbox-sb', 1, 2],
    ]);
    // The channels heard what was done and on what.
    const titles = JSON.stringify(notifications);
    expect(titles).toContain('Raised');
    expect(titles).toContain('stampkeeper-sandbox-sb');
    expect(titles).toContain('orders');
  }, 300_000);
});
