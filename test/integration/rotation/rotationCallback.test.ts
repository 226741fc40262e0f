/**
 * Completion of a webhook roll by callback: the rotation registers the roll's callback (a one-time
 * token, stored as its hash) before calling the webhook, gives the webhook the callback URL, and
 * verifies the roll once the callback was recorded. The sandbox's webhook consumer calls back when
 * its roll ends; here a small server plays the app's callback endpoint with the same functions
 * (`parseRollCallback`, `recordRollCallback`); the endpoint itself runs in test/e2e.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AlreadyDoneError } from '../../../src/lib/core/errors';
import { errorResponse } from '../../../src/lib/core/http';
import {
  parseRollCallback,
  recordRollCallback,
  registerRollCallback,
} from '../../../src/lib/rotation/rollCallbacks';
import type { StateStores } from '../../../src/lib/state';
import type { Sandbox } from '../../../src/local/sandbox';
import { freshStores, TestClock } from '../runs/support';
import { COSMOS_ID, rotationTags, rotationWorld, stepsOf, VAULT } from './support';

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** The app's callback endpoint, as a plain server over the real store; keeps the URLs it was called on. */
async function callbackEndpoint(target: { stores?: StateStores; sandbox?: Sandbox }) {
  const received: string[] = [];
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (c) => (text += c));
    req.on('end', async () => {
      received.push(req.url!);
      const url = new URL(req.url!, 'http://localhost');
      let status = 200;
      let body: unknown;
      try {
        const parsed = parseRollCallback({
          id: url.searchParams.get('id'),
          token: url.searchParams.get('token'),
          body: JSON.parse(text || 'null'),
        });
        body = await recordRollCallback(parsed, {
          store: target.stores!.rollCallbacks,
          clock: target.sandbox!.clock,
        });
      } catch (error) {
        const mapped = errorResponse(error, 'test');
        status = mapped.status;
        body = mapped.jsonBody;
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
}

const post = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function world(base: string, roll: Record<string, unknown>) {
  return rotationWorld({
    secrets: [
      {
        name: 'cosmos-key',
        valueFrom: { resource: 'cosmosDb/cosmos-rot', key: 'primaryMasterKey' },
        expiresInDays: 20,
        tags: rotationTags('cosmosDbKeys', COSMOS_ID, 'primary'),
      },
    ],
    consumers: [
      {
        name: 'legacy',
        kind: 'webhook',
        url: 'https://ci.rotation.example/hooks/legacy',
        credential: { vault: VAULT, secret: 'cosmos-key', resource: 'cosmosDb/cosmos-rot' },
        roll,
      },
    ],
    settings: { LEGACY_HOOK: 'https://ci.rotation.example/hooks/legacy' },
    callbackBaseUrl: base,
    policy: `
  - vault: ${VAULT}
    name: cosmos-key
    owner: team-data
    rotation:
      provider: cosmosDbKeys
      resourceId: ${COSMOS_ID}
      mode: revoke
      consumers:
        - { type: webhook, name: legacy, urlSetting: LEGACY_HOOK, completion: callback }`,
  });
}

describe('webhook rolls completed by callback', () => {
  it('verifies the roll once the webhook called back, then revokes; the token is good once and never in the run', async () => {
    // Prepare
    const target: { stores?: StateStores; sandbox?: Sandbox } = {};
    const endpoint = await callbackEndpoint(target);
    const w = await world(endpoint.base, { seconds: 120 });
    Object.assign(target, { stores: w.stores, sandbox: w.sandbox });

    // Act
    const run = await w.drive(await w.started('cosmos-key'));
    const [used] = endpoint.received;
    const replay = await post(`${endpoint.base}${used}`, { status: 'Failed' });
    const forged = await post(`${endpoint.base}${used!.replace(/token=[^&]+/, `token=${'A'.repeat(43)}`)}`, {
      status: 'Succeeded',
    });
    const unknown = await post(`${endpoint.base}${used!.replace(/id=[0-9a-f]+/, `id=${'0'.repeat(32)}`)}`, {
      status: 'Succeeded',
    });
    const malformed = await post(`${endpoint.base}${used}`, { status: 'done', extra: 1 });

    // Assess
    expect(run.error).toBeUndefined();
    expect(stepsOf(run).slice(4)).toEqual([
      ['roll', 'done'],
      ['verify', 'done'],
      ['revoke', 'done'],
      ['finish', 'done'],
    ]);
    expect(run.steps[5]!.waits).toBeGreaterThan(0);
    expect(w.sandbox.webhookCallbacks()).toEqual([
      { consumer: 'legacy', rollId: expect.any(String), status: 'Succeeded', answered: 200 },
    ]);
    expect(used).toMatch(/^\/api\/rollcallbacks\?id=[0-9a-f]{32}&token=[A-Za-z0-9_-]{43}$/);
    const token = /token=([^&]+)/.exec(used!)![1]!;
    const handle = (run.steps[4]!.output as { handles: Array<{ handle: { ref: Record<string, string> } }> })
      .handles[0]!.handle;
    expect(handle.ref).toEqual({ completion: 'callback', callback: /id=([0-9a-f]{32})/.exec(used!)![1] });
    expect(JSON.stringify(run)).not.toContain(token);
    expect(w.logs.join('\n')).not.toContain(token);
    expect([replay.status, forged.status, unknown.status, malformed.status]).toEqual([409, 403, 403, 400]);
    expect(((await malformed.json()) as { error: { problems: string[] } }).error.problems).toEqual([
      'extra: not allowed (allowed: status, reason, id, consumer)',
      "status: 'Succeeded' or 'Failed'",
    ]);
    expect(w.regenerations(COSMOS_ID)).toEqual(['secondaryMasterKey', 'primaryMasterKey']);
    expect(w.sandbox.downtime().totalMs).toBe(0);
  });

  it('fails the rotation, and revokes nothing, when the webhook calls back Failed', async () => {
    // Prepare
    const target: { stores?: StateStores; sandbox?: Sandbox } = {};
    const endpoint = await callbackEndpoint(target);
    const w = await world(endpoint.base, { seconds: 60, outcome: 'fail', failReason: 'stage deploy failed' });
    Object.assign(target, { stores: w.stores, sandbox: w.sandbox });

    // Act
    const run = await w.drive(await w.started('cosmos-key'));

    // Assess
    expect(run.state).toBe('failed');
    expect(run.error?.code).toBe('RollFailed');
    expect(run.error?.message).toContain('the webhook called back: Failed: stage deploy failed');
    expect(w.regenerations(COSMOS_ID)).toEqual(['secondaryMasterKey']);
    expect(w.sandbox.downtime().totalMs).toBe(0);
  });

  it('records one of two callbacks racing with the same token (ETag), and refuses the other', async () => {
    // Prepare
    const clock = new TestClock();
    const stores = await freshStores(clock);
    const deps = { store: stores.rollCallbacks, clock };
    const { url } = await registerRollCallback(
      { runId: 'run-1', consumer: 'legacy', baseUrl: 'https://app.example', ttlMs: 3_600_000 },
      deps,
    );
    const query = new URL(url).searchParams;
    const report = (status: 'Succeeded' | 'Failed') =>
      recordRollCallback(
        parseRollCallback({ id: query.get('id'), token: query.get('token'), body: { status } }),
        deps,
      );

    // Act
    const outcomes = await Promise.allSettled([report('Succeeded'), report('Failed'), report('Succeeded')]);
    const stored = await stores.rollCallbacks.get(query.get('id')!);

    // Assess
    const recorded = outcomes.filter((o) => o.status === 'fulfilled');
    expect(recorded).toHaveLength(1);
    expect(
      outcomes.filter((o) => o.status === 'rejected').map((o) => (o as PromiseRejectedResult).reason),
    ).toEqual([expect.any(AlreadyDoneError), expect.any(AlreadyDoneError)]);
    expect(stored?.status).toBe((recorded[0] as PromiseFulfilledResult<{ status: string }>).value.status);
    expect(JSON.stringify(stored)).not.toContain(query.get('token'));
  });
});
