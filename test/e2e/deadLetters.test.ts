/**
 * Dead letters end to end, on the bundle the app deploys, on the local host and the sandbox, as
 * `npm start` runs them: the default scenario's orders worker fails orders → they dead-letter on
 * the sandbox broker (real AMQP) → the app's dead-letter trigger archives them and alerts the
 * channels → an operator reads one, edits it as a new revision and replays it → the worker takes
 * the replayed copy. And every endpoint answers bad input with a 4xx and changes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningLocalApp } from '../../src/local/app';
import type { HostLogger } from '../../src/local/host/types';
import { startBundledApp } from './support/localApp';

const logs: string[] = [];
const logger: HostLogger = {
  info: (m) => logs.push(m),
  warn: (m) => logs.push(m),
  error: (m) => logs.push(m),
};
const consoleMethods = ['log', 'info', 'warn', 'error', 'debug'] as const;
const originalConsole = consoleMethods.map((m) => [m, console[m]] as const);

let app: RunningLocalApp;
beforeAll(async () => {
  for (const m of consoleMethods) console[m] = (...args: unknown[]) => logs.push(args.map(String).join(' '));
  app = await startBundledApp({ prefix: 'dl', logger });
}, 120_000);
afterAll(async () => {
  await app?.stop();
  for (const [m, original] of originalConsole) console[m] = original as never;
});

async function json(
  path: string,
  init?: RequestInit,
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are read freely in assertions
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${app.url}${path}`, init);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}
const post = (path: string, body: unknown) =>
  json(path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });

const worker = () => app.serviceBus!.consumers.find((c) => c.stats().name === 'orders-worker')!;

/** Polls (bounded by attempts, never by a timed assertion) until `check` returns a value. */
async function until<T>(check: () => T | undefined | Promise<T | undefined>, attempts = 200): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not reached after ${attempts} attempts; logs:\n${logs.slice(-40).join('\n')}`);
}

async function invalidOrder() {
  const list = await json('/api/deadletters?entity=orders&reason=ValidationFailed');
  expect(list.status).toBe(200);
  expect(list.body.count).toBe(1);
  return list.body.records[0];
}

describe('dead letters on npm start', { timeout: 120_000 }, () => {
  it('a failed order dead-letters, is archived and alerted, is edited and replayed, and the worker takes it', async () => {
    // Prepare: start-up has sent the scenario's orders; the worker refused order-1002 (invalid)
    // and failed order-1003 on every delivery; both are archived before the first request.
    const listed = await json('/api/deadletters?entity=orders');
    expect(listed.status).toBe(200);
    const byMessage = Object.fromEntries(
      listed.body.records.map((r: { messageId: string }) => [r.messageId, r]),
    );
    expect(Object.keys(byMessage).sort()).toEqual(['order-1002', 'order-1003']);
    expect(byMessage['order-1002']).toMatchObject({
      entity: 'orders',
      path: 'orders',
      deadLetterReason: 'ValidationFailed',
      deadLetterErrorDescription: 'the order has no delivery address',
      subject: 'OrderPlaced',
      state: 'parked',
      applicationProperties: { warehouse: 'paris', valid: false },
      classification: { reasonClass: 'application', decision: 'park', messageType: 'OrderPlaced' },
    });
    // The policy replays MaxDeliveryCountExceeded automatically, 10 minutes later (scheduled).
    expect(byMessage['order-1003']).toMatchObject({
      deadLetterReason: 'MaxDeliveryCountExceeded',
      deliveryCount: 3,
      classification: { decision: 'auto-replay' },
      state: 'replayed',
      lastReplay: { attempt: 1, status: 'sent', actor: 'system:deadletters' },
    });
    // Nothing is left in the dead-letter queue: everything was archived, then completed.
    expect(app.serviceBus!.broker.entities.get('orders').counts().deadLetter).toBe(0);
    // One alert for the entity, with the counts per reason, on the default channels.
    const alert = await until(() =>
      app.sandbox!.eventGrid.published().find((e) => JSON.stringify(e).includes('deadletters.arrived')),
    );
    expect(JSON.stringify(alert)).toContain('orders');
    expect(JSON.stringify(alert)).toContain('ValidationFailed');

    const id = byMessage['order-1002'].id as string;
    const viewed = await json(`/api/deadletters/${id}`);
    expect(viewed.status).toBe(200);
    expect(viewed.body.current.body).toEqual({ encoding: 'json', value: { order: 1002, items: 1 } });

    // Act: the operator fixes the order (a new revision) and replays it.
    const edited = await post(`/api/deadletters/${id}/revisions`, {
      body: { order: 1002, items: 1, address: '1 rue de la Paix' },
      properties: { valid: true },
      reason: 'address added by support',
    });
    const replayed = await post(`/api/deadletters/${id}/replay`, {});

    // Assess: the worker completes the replayed copy; the original revision is kept.
    expect(edited.status).toBe(201);
    expect(edited.body.revision).toBe(1);
    expect(replayed.status).toBe(202);
    expect(replayed.body).toMatchObject({ status: 'replayed', attempt: 1, target: 'orders', revision: 1 });
    const outcome = await until(() =>
      worker()
        .stats()
        .recent.find((o) => o.messageId === replayed.body.messageId),
    );
    expect(outcome.outcome).toBe('completed');
    const after = await json(`/api/deadletters/${id}`);
    expect(after.body).toMatchObject({
      state: 'replayed',
      revisions: 1,
      replays: 1,
      lastReplay: { status: 'sent', revision: 1, messageId: replayed.body.messageId },
    });
    expect(after.body.current.body.value).toMatchObject({ address: '1 rue de la Paix' });
    expect(after.body.current.message.applicationProperties).toMatchObject({ valid: true });
    expect(after.body.revisionHistory.map((r: { revision: number }) => r.revision)).toEqual([0, 1]);
    const original = after.body.revisionHistory[0];
    expect(original.body.sha256).toBe(byMessage['order-1002'].body.sha256);
    // Every action is audited, by name.
    const audit = await json(`/api/audit?target=${encodeURIComponent(`deadletters/orders/${id}`)}`);
    expect(audit.status).toBe(200);
    // (The sandbox clock stands still: both at the same time, in id order.)
    expect(audit.body.records.map((r: { action: string }) => r.action).sort()).toEqual([
      'deadletters.edit',
      'deadletters.replay',
    ]);
  });

  it('answers bad input on every endpoint with a 4xx listing the problems, and changes nothing', async () => {
    // Prepare
    const before = await invalidOrder();
    const id = before.id as string;

    // Act
    const answers = {
      listEntity: await json('/api/deadletters?entity=nope&state=lost&limit=0&from=yesterday'),
      listUnknown: await json('/api/deadletters?colour=red'),
      getMalformed: await json('/api/deadletters/not-an-id'),
      getMissing: await json('/api/deadletters/orders.999999.abcdef'),
      editNothing: await post(`/api/deadletters/${id}/revisions`, {}),
      editBad: await post(`/api/deadletters/${id}/revisions`, {
        properties: { DeadLetterReason: 'x', nested: { a: 1 } },
        timeToLiveMs: -1,
        colour: 'red',
      }),
      editNotJson: await post(`/api/deadletters/${id}/revisions`, '{not json'),
      replayTo: await post(`/api/deadletters/${id}/replay`, { to: 'payments', revision: 7 }),
      replayRevision: await post(`/api/deadletters/${id}/replay`, { revision: 7 }),
      discardNoReason: await post(`/api/deadletters/${id}/discard`, {}),
      purgeNoEntity: await post('/api/deadletters/purge', { filter: { state: 'parked' }, confirm: 1 }),
      purgeBadConfirm: await post('/api/deadletters/purge', {
        filter: { entity: 'orders' },
        confirm: 'yes',
      }),
      purgeWrongCount: await post('/api/deadletters/purge', {
        filter: { entity: 'orders', reason: 'ValidationFailed' },
        confirm: 99,
      }),
    };

    // Assess
    const statuses = Object.fromEntries(Object.entries(answers).map(([k, v]) => [k, v.status]));
    expect(statuses).toEqual({
      listEntity: 400,
      listUnknown: 400,
      getMalformed: 400,
      getMissing: 404,
      editNothing: 400,
      editBad: 400,
      editNotJson: 400,
      replayTo: 400,
      replayRevision: 409,
      discardNoReason: 400,
      purgeNoEntity: 400,
      purgeBadConfirm: 400,
      purgeWrongCount: 409,
    });
    expect(answers.listEntity.body.error.problems).toEqual([
      expect.stringMatching(/^entity: 'nope' is not a dead-letter entity/),
      expect.stringMatching(/^from: an ISO 8601/),
      expect.stringMatching(/^state: one of parked/),
      expect.stringMatching(/^limit: an integer from 1 to 200/),
    ]);
    expect(answers.editBad.body.error.problems).toEqual([
      expect.stringMatching(/^colour: not allowed/),
      expect.stringMatching(/^timeToLiveMs:/),
      expect.stringMatching(/^properties\.DeadLetterReason: set by Service Bus/),
      expect.stringMatching(/^properties\.nested: a string, a number/),
    ]);
    const after = await invalidOrder();
    const { updatedOn: _u, ...same } = before;
    expect(after).toMatchObject(same);
    expect(after.revisions).toBe(before.revisions);
    expect(after.replays).toBe(before.replays);
  });
});
