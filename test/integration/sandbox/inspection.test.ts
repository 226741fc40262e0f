import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AzureKeyCredential } from '@azure/core-auth';
import { EventGridPublisherClient } from '@azure/eventgrid';
import { SecretClient } from '@azure/keyvault-secrets';
import { afterEach, describe, expect, it } from 'vitest';
import { createSandbox, type Sandbox } from '../../../src/local/sandbox';

const SEEDED_VALUE = 'seeded-VALUE-never-shown-4711';
const SET_VALUE = 'set-VALUE-never-shown-0815';
const VAULT = 'kv-inspect';

let server: Server | undefined;

afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** Mounts the inspection API on a loopback server the way the local host does (falls through to 418 here). */
async function serve(sandbox: Sandbox): Promise<string> {
  server = createServer((req, res) => {
    sandbox.handleHttp(req, res).then((handled) => {
      if (!handled) {
        res.writeHead(418);
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

function busySandbox(): Sandbox {
  return createSandbox({
    scenario: {
      clock: { start: '2026-01-01T00:00:00Z' },
      keyVault: {
        vaults: [{ name: VAULT, secrets: [{ name: 'seeded', value: SEEDED_VALUE, expiresInDays: 40 }] }],
      },
      eventGrid: {
        subscriptions: [{ name: 'app', vault: '*', endpoint: { functionName: 'keyVaultEvents' } }],
      },
      delivery: { duplicateProbability: 1 },
    },
    deliver: { post: async () => ({ status: 200 }) },
  });
}

describe('sandbox inspection over HTTP', () => {
  it('serves the index, estate, clock, events and notifications, none of them holding a secret value', async () => {
    // Prepare
    const sandbox = busySandbox();
    const base = await serve(sandbox);
    const secrets = new SecretClient(sandbox.keyVault.vaultUrl(VAULT), sandbox.credential, {
      httpClient: sandbox.httpClient,
    });
    await secrets.setSecret('set-later', SET_VALUE, { tags: { owner: 'ops' } });
    await secrets.getSecret('seeded');
    const publisher = new EventGridPublisherClient(
      'https://t.westeurope-1.eventgrid.azure.net/api/events',
      'CloudEvent',
      new AzureKeyCredential('k'),
      { httpClient: sandbox.httpClient },
    );
    await publisher.send([
      { type: 'Stampkeeper.Notice', source: '/stampkeeper', data: { secret: 'set-later' } },
    ]);
    await fetch(`${base}/sandbox/clock/advance`, { method: 'POST', body: JSON.stringify({ days: 11 }) });

    // Act
    const paths = [
      '/sandbox/',
      '/sandbox/estate',
      '/sandbox/clock',
      '/sandbox/events',
      '/sandbox/notifications',
    ];
    const answers = await Promise.all(paths.map(async (p) => ({ path: p, res: await fetch(`${base}${p}`) })));
    const bodies = await Promise.all(
      answers.map(async (a) => ({ path: a.path, status: a.res.status, text: await a.res.text() })),
    );

    // Assess
    expect(JSON.stringify(sandbox.scenario)).not.toContain(SEEDED_VALUE);
    for (const body of bodies) {
      expect(body.status, body.path).toBe(200);
      expect(body.text, body.path).not.toContain(SEEDED_VALUE);
      expect(body.text, body.path).not.toContain(SET_VALUE);
    }
    const estate = JSON.parse(bodies[1]!.text);
    expect(estate.keyVault.vaults[0].secrets.map((s: { name: string }) => s.name)).toEqual([
      'seeded',
      'set-later',
    ]);
    expect(estate.keyVault.vaults[0].secrets[1].versions[0]).toMatchObject({
      tags: { owner: 'ops' },
      enabled: true,
    });
    expect(JSON.parse(bodies[2]!.text)).toEqual({ now: '2026-01-12T00:00:00.000Z' });
    const events = JSON.parse(bodies[3]!.text).events;
    expect(events.map((e: { eventType: string }) => e.eventType)).toEqual([
      'Microsoft.KeyVault.SecretNewVersionCreated',
      'Microsoft.KeyVault.SecretNearExpiry',
    ]);
    expect(events[1].deliveries).toHaveLength(2);
    expect(JSON.parse(bodies[4]!.text).eventGrid).toHaveLength(1);
  });

  it('advances the clock by a duration or to a time, answering the new time and the events raised', async () => {
    // Prepare
    const sandbox = busySandbox();
    const base = await serve(sandbox);

    // Act
    const byDays = await fetch(`${base}/sandbox/clock/advance`, {
      method: 'POST',
      body: '{"days":10,"hours":12}',
    });
    const toTime = await fetch(`${base}/sandbox/clock/advance`, {
      method: 'POST',
      body: '{"to":"2026-02-15T00:00:00Z"}',
    });

    // Assess
    expect(byDays.status).toBe(200);
    expect(await byDays.json()).toMatchObject({
      now: '2026-01-11T12:00:00.000Z',
      raised: [
        {
          eventType: 'Microsoft.KeyVault.SecretNearExpiry',
          subject: 'seeded',
          eventTime: '2026-01-11T00:00:00.000Z',
        },
      ],
    });
    expect(await toTime.json()).toMatchObject({
      now: '2026-02-15T00:00:00.000Z',
      raised: [{ eventType: 'Microsoft.KeyVault.SecretExpired', eventTime: '2026-02-10T00:00:00.000Z' }],
    });
  });

  it('serialises concurrent advances: two one-day advances move the clock two days', async () => {
    // Prepare
    const sandbox = busySandbox();
    const base = await serve(sandbox);

    // Act
    await Promise.all([
      fetch(`${base}/sandbox/clock/advance`, { method: 'POST', body: '{"days":1}' }),
      fetch(`${base}/sandbox/clock/advance`, { method: 'POST', body: '{"days":1}' }),
    ]);

    // Assess
    expect(sandbox.clock.now().toISOString()).toBe('2026-01-03T00:00:00.000Z');
  });

  it('answers 400, not 500, to a { to } that a concurrent advance has already moved past', async () => {
    // Prepare: the first advance is held at its first delivery, so the second is asked while it runs.
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let delivering!: () => void;
    const firstDelivery = new Promise<void>((resolve) => {
      delivering = resolve;
    });
    const sandbox = createSandbox({
      scenario: {
        clock: { start: '2026-01-01T00:00:00Z' },
        keyVault: { vaults: [{ name: VAULT, secrets: [{ name: 'seeded', expiresInDays: 40 }] }] },
        eventGrid: { subscriptions: [{ name: 'app', vault: '*', endpoint: { functionName: 'kv' } }] },
        delivery: { duplicateProbability: 0 },
      },
      deliver: {
        post: async () => {
          delivering();
          await held;
          return { status: 200 };
        },
      },
    });
    let entered = 0;
    server = createServer((req, res) => {
      entered += 1;
      // As the local host does with a handler that throws.
      sandbox.handleHttp(req, res).catch(() => {
        res.writeHead(500);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/sandbox/clock/advance`;

    // Act
    const later = fetch(url, { method: 'POST', body: '{"to":"2026-01-20T00:00:00Z"}' });
    await firstDelivery;
    const earlier = fetch(url, { method: 'POST', body: '{"to":"2026-01-15T00:00:00Z"}' });
    while (entered < 2) await new Promise((resolve) => setImmediate(resolve));
    for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
    release();
    const [first, second] = await Promise.all([later, earlier]);

    // Assess
    expect(first.status).toBe(200);
    expect(second.status).toBe(400);
    const error = ((await second.json()) as { error: { code: string; message: string } }).error;
    expect(error.code).toBe('BadRequest');
    expect(error.message).toContain('before the sandbox time 2026-01-20T00:00:00.000Z');
    expect(sandbox.clock.now().toISOString()).toBe('2026-01-20T00:00:00.000Z');
  });

  it('validates a queued { to } against the time the advance before it leaves', async () => {
    // Prepare
    const sandbox = busySandbox();

    // Act
    const [later, earlier] = await Promise.allSettled([
      sandbox.advance({ to: '2026-01-20T00:00:00Z' }),
      sandbox.advance({ to: '2026-01-15T00:00:00Z' }),
    ]);

    // Assess
    expect(later.status).toBe('fulfilled');
    expect(earlier.status).toBe('rejected');
    const reason = (earlier as PromiseRejectedResult).reason as Error;
    expect(reason).toBeInstanceOf(RangeError);
    expect(reason.message).toContain('is before the sandbox time 2026-01-20T00:00:00.000Z');
    expect(sandbox.clock.now().toISOString()).toBe('2026-01-20T00:00:00.000Z');
  });

  it('refuses bad advance requests with 400 and a clear message, leaving the clock where it was', async () => {
    // Prepare
    const sandbox = busySandbox();
    const base = await serve(sandbox);
    const bad = [
      '{"days":-1}',
      '{"weeks":2}',
      '{"to":"yesterday"}',
      '{"to":"2025-12-31T00:00:00Z"}',
      'not json',
      '{}',
      '{"days":1,"to":"2026-02-01T00:00:00Z"}',
    ];

    // Act
    const answers = [];
    for (const body of bad) {
      const res = await fetch(`${base}/sandbox/clock/advance`, { method: 'POST', body });
      answers.push({ status: res.status, json: (await res.json()) as { error: { message: string } } });
    }

    // Assess
    for (const answer of answers) {
      expect(answer.status).toBe(400);
      expect(answer.json.error.message.length).toBeGreaterThan(10);
    }
    expect(answers[0]!.json.error.message).toBe('"days" must be a non-negative number');
    expect(answers[3]!.json.error.message).toContain('time only moves forward');
    expect(sandbox.clock.now().toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(sandbox.events()).toEqual([]);
  });

  it('refuses absurd advances with 400 before touching the clock, which then still advances normally', async () => {
    // Prepare
    const sandbox = busySandbox();
    const base = await serve(sandbox);
    const absurd = [
      '{"days":1e10}',
      '{"days":36526}',
      '{"days":36525,"seconds":1}',
      '{"hours":1e308,"days":1e308}',
      '{"days":null}',
      '{"days":"5"}',
      '{"to":"9999-12-31T00:00:00Z"}',
      '{"to":"2126-01-02T00:00:01Z"}',
    ];

    // Act
    const answers = [];
    for (const body of absurd) {
      const res = await fetch(`${base}/sandbox/clock/advance`, { method: 'POST', body });
      answers.push({ body, status: res.status, json: (await res.json()) as { error: { message: string } } });
    }
    const programmatic = await sandbox.advance({ days: 1e10 }).catch((err: unknown) => err);
    const direct = await sandbox.clock.advance(8.64e17).catch((err: unknown) => err);
    const clockAfter = await (await fetch(`${base}/sandbox/clock`)).json();
    const normal = await fetch(`${base}/sandbox/clock/advance`, {
      method: 'POST',
      body: '{"days":1}',
    });
    const longest = await fetch(`${base}/sandbox/clock/advance`, {
      method: 'POST',
      body: '{"days":36525}',
    });

    // Assess
    for (const answer of answers) expect(answer, answer.body).toMatchObject({ status: 400 });
    expect(answers[0]!.json.error.message).toContain('at most 100 years');
    expect(answers[6]!.json.error.message).toContain('at most 100 years');
    expect(programmatic).toBeInstanceOf(RangeError);
    expect(direct).toBeInstanceOf(RangeError);
    expect(clockAfter).toEqual({ now: '2026-01-01T00:00:00.000Z' });
    expect(normal.status).toBe(200);
    expect(((await normal.json()) as { now: string }).now).toBe('2026-01-02T00:00:00.000Z');
    expect(longest.status).toBe(200);
    expect(sandbox.clock.now().toISOString()).toBe('2126-01-03T00:00:00.000Z');
  });

  it('answers 404 JSON under /sandbox/, 405 for writes to read-only views, and leaves other paths to the host', async () => {
    // Prepare
    const sandbox = busySandbox();
    const base = await serve(sandbox);

    // Act
    const unknown = await fetch(`${base}/sandbox/nope`);
    const write = await fetch(`${base}/sandbox/estate`, { method: 'POST', body: '{}' });
    const other = await fetch(`${base}/api/health`);

    // Assess
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('NotFound');
    expect(write.status).toBe(405);
    expect(other.status).toBe(418);
  });
});
