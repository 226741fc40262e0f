import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseHostConfig } from '../../../src/local/host/hostConfig';
import { type RunningLocalHost, startLocalHost } from '../../../src/local/host/localHost';
import { storageConnectionString, uniquePrefix } from '../../support/storage';
import { captureLogger } from '../triggers/support';
import { recorded, resetRecorded } from './fixtures/recorder';

const loadFixtureApp = () => import('./fixtures/app.js');
/** Host storage for hosts that run timers (their schedule status and singleton lock), a host id of their own. */
const timerStorage = () => ({
  AzureWebJobsStorage: storageConnectionString(),
  AzureFunctionsWebHost__hostid: uniquePrefix('hid'),
});
const FIXTURES = resolve(__dirname, '../../fixtures/events');

/** Polls `check` until it is true (bounded; no timing assertion). */
async function eventually(check: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function keyVaultEvent(id: string) {
  // Factory over Microsoft's published sample (Event Grid schema array of one event).
  const [sample] = JSON.parse(
    readFileSync(resolve(FIXTURES, 'keyvault/SecretNewVersionCreated.eventgrid.json'), 'utf8'),
  ) as Array<Record<string, unknown>>;
  return { ...sample, id };
}

function cloudEvent(id: string) {
  const sample = JSON.parse(
    readFileSync(resolve(FIXTURES, 'keyvault/SecretNewVersionCreated.cloudevents.json'), 'utf8'),
  ) as Record<string, unknown> | Array<Record<string, unknown>>;
  const one = Array.isArray(sample) ? (sample[0] as Record<string, unknown>) : sample;
  return { ...one, id };
}

describe('local host without key checks', () => {
  let host: RunningLocalHost;
  const logger = captureLogger();

  beforeAll(async () => {
    host = await startLocalHost({ appEntry: loadFixtureApp, port: 0, logger, startTimers: false });
  });
  afterAll(async () => {
    await host.stop();
  });
  afterEach(() => resetRecorded());

  it('serves an HTTP trigger at /api/<name> with the query, and logs context.log lines with the function name', async () => {
    // Act
    const res = await fetch(`${host.url}/api/hello?name=Ada`);
    // Assess
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('Hello, Ada');
    expect(logger.lines).toContain('info [hello] hello called with name=Ada');
    expect(recorded.hookCalls).toEqual(['pre:hello', 'post:hello']);
  });

  it('matches route templates with params, optional params and constraints; returns status, headers, cookies and JSON', async () => {
    // Act
    const put = await fetch(`${host.url}/api/items/42/blue`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ colour: 'blue' }),
    });
    const get = await fetch(`${host.url}/api/ITEMS/7`);
    // Assess
    expect(put.status).toBe(201);
    expect(put.headers.get('x-item-id')).toBe('42');
    expect(put.headers.get('content-type')).toMatch(/application\/json/);
    expect(put.headers.get('set-cookie')).toBe('seen=yes; Path=/; HttpOnly');
    expect(await put.json()).toEqual({ id: '42', tag: 'blue', method: 'PUT', body: { colour: 'blue' } });
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({ id: '7', tag: null, method: 'GET', body: null });
  });

  it('answers 404 for unknown routes and for params that break a constraint, 405 for a wrong method', async () => {
    // Act
    const unknown = await fetch(`${host.url}/api/nothing-here`);
    const notInt = await fetch(`${host.url}/api/items/abc`);
    const wrongMethod = await fetch(`${host.url}/api/hello`, { method: 'DELETE' });
    // Assess
    expect(unknown.status).toBe(404);
    expect(notInt.status).toBe(404);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET');
  });

  it('answers 500 without error details when the function throws', async () => {
    // Act
    const res = await fetch(`${host.url}/api/boom`);
    // Assess
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain('kaboom');
    expect(logger.lines.some((l) => l.startsWith('error [boom]') && l.includes('kaboom'))).toBe(true);
  });

  it('does not check keys when key checking is off', async () => {
    // Act
    const fnLevel = await fetch(`${host.url}/api/guarded`);
    const adminLevel = await fetch(`${host.url}/api/adminOnly`);
    const admin = await fetch(`${host.url}/admin/host/status`);
    // Assess
    expect([fnLevel.status, adminLevel.status, admin.status]).toEqual([200, 200, 200]);
  });

  it('answers the Event Grid subscription validation handshake with the validation code', async () => {
    // Prepare
    const body = readFileSync(
      resolve(FIXTURES, 'eventgrid/SubscriptionValidationEvent.eventgrid.json'),
      'utf8',
    );
    const expected = JSON.parse(
      readFileSync(resolve(FIXTURES, 'eventgrid/SubscriptionValidationResponse.json'), 'utf8'),
    );
    // Act
    const res = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`, {
      method: 'POST',
      headers: { 'aeg-event-type': 'SubscriptionValidation', 'content-type': 'application/json' },
      body,
    });
    // Assess
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(expected);
    expect(recorded.events).toEqual([]);
  });

  it('invokes the function once per event of an Event Grid notification array', async () => {
    // Prepare
    const events = [keyVaultEvent('e-1'), keyVaultEvent('e-2')];
    // Act
    const res = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`, {
      method: 'POST',
      headers: { 'aeg-event-type': 'Notification', 'content-type': 'application/json' },
      body: JSON.stringify(events),
    });
    // Assess
    expect(res.status).toBe(202);
    expect(recorded.events.map((e) => (e.event as { id: string }).id).sort()).toEqual(['e-1', 'e-2']);
    const first = recorded.events[0]?.event as { eventType: string; subject: string };
    const sent = events[0] as { eventType?: unknown; subject?: unknown };
    expect(first.eventType).toBe(sent.eventType);
    expect(first.subject).toBe(sent.subject);
  });

  it('invokes the function for a single CloudEvent and for a CloudEvents batch', async () => {
    // Act
    const single = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`, {
      method: 'POST',
      headers: { 'aeg-event-type': 'Notification', 'content-type': 'application/cloudevents+json' },
      body: JSON.stringify(cloudEvent('c-1')),
    });
    const batch = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`, {
      method: 'POST',
      headers: { 'aeg-event-type': 'Notification', 'content-type': 'application/cloudevents-batch+json' },
      body: JSON.stringify([cloudEvent('c-2'), cloudEvent('c-3')]),
    });
    // Assess
    expect([single.status, batch.status]).toEqual([202, 202]);
    expect(recorded.events.map((e) => (e.event as { id: string }).id).sort()).toEqual(['c-1', 'c-2', 'c-3']);
    expect(recorded.events[0]?.event).toMatchObject({ specversion: '1.0' });
  });

  it("answers the CloudEvents abuse-protection handshake with the runtime's WebHook-Allowed-Origin rules", async () => {
    // Prepare
    const options = (origin?: string) =>
      fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`, {
        method: 'OPTIONS',
        headers: origin === undefined ? {} : { 'WebHook-Request-Origin': origin },
      });
    // Act
    const publicCloud = await options('eventgrid.azure.net');
    const usGov = await options('eventgrid.azure.us');
    const china = await options('eventgrid.azure.cn');
    const other = await options('evil.example.com');
    const none = await options();
    const unknown = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=nope`, {
      method: 'OPTIONS',
      headers: { 'WebHook-Request-Origin': 'eventgrid.azure.net' },
    });
    // Assess
    expect([publicCloud, usGov, china, other, none].map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(publicCloud.headers.get('webhook-allowed-origin')).toBe('eventgrid.azure.net');
    expect(usGov.headers.get('webhook-allowed-origin')).toBe('eventgrid.azure.us');
    expect(china.headers.get('webhook-allowed-origin')).toBe('eventgrid.azure.cn');
    expect(other.headers.get('webhook-allowed-origin')).toBe('eventgrid.azure.net');
    expect(none.headers.get('webhook-allowed-origin')).toBe('eventgrid.azure.net');
    expect(publicCloud.headers.get('webhook-allowed-rate')).toBeNull();
    expect(unknown.status).toBe(404);
    expect(recorded.events).toEqual([]);
  });

  it('answers Unsubscribe, unknown functions, missing headers and other methods like the extension', async () => {
    // Act
    const unsubscribe = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`, {
      method: 'POST',
      headers: { 'aeg-event-type': 'Unsubscribe' },
      body: '[]',
    });
    const unknown = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=nope`, {
      method: 'POST',
      headers: { 'aeg-event-type': 'Notification' },
      body: '[]',
    });
    const notEventGrid = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=hello`, {
      method: 'POST',
      headers: { 'aeg-event-type': 'Notification' },
      body: '[]',
    });
    const noHeader = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`, {
      method: 'POST',
      body: JSON.stringify([keyVaultEvent('x')]),
    });
    const put = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`, {
      method: 'PUT',
      headers: { 'aeg-event-type': 'Notification' },
      body: JSON.stringify([keyVaultEvent('x')]),
    });
    // Assess
    expect(unsubscribe.status).toBe(202);
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toBe("cannot find function: 'nope'");
    expect(notEventGrid.status).toBe(404);
    expect(noHeader.status).toBe(400);
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, POST, DELETE, OPTIONS');
    expect(recorded.events).toEqual([]);
  });

  it('refuses with a 4xx, before invoking anything, a delivery the extension cannot read or bind', async () => {
    // Prepare
    const notify = (body: string) =>
      fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`, {
        method: 'POST',
        headers: { 'aeg-event-type': 'Notification', 'content-type': 'application/json' },
        body,
      });
    const nested = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
    const good = JSON.stringify(keyVaultEvent('good'));
    // Act
    const deepArray = await notify(`${'['.repeat(10_000)}${']'.repeat(10_000)}`);
    // 1 (array) + 1 (event) + 63 = 65 nested containers: one more than Newtonsoft's MaxDepth of 64.
    const deepEvent = await notify(`[${good}, {"id":"deep","data":${nested(63)}}]`);
    const notAnObject = await notify(`[${good}, 42]`);
    const malformed = await notify(`[${good}, {"id": }]`);
    const trailing = await notify(`[${good}] x`);
    const scalar = await notify('"an event"');
    // Assess
    expect(deepArray.status).toBe(400);
    expect(await deepArray.text()).toMatch(/deeper than 64 levels/);
    expect([deepEvent.status, notAnObject.status, malformed.status, trailing.status, scalar.status]).toEqual([
      400, 400, 400, 400, 400,
    ]);
    expect(recorded.events).toEqual([]);
  });

  it('accepts an event nested exactly as deep as the extension reads (64 levels)', async () => {
    // Prepare: 1 (array) + 1 (event) + 62 = 64 nested containers.
    const nested = `${'{"a":'.repeat(62)}1${'}'.repeat(62)}`;
    // Act
    const res = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`, {
      method: 'POST',
      headers: { 'aeg-event-type': 'Notification' },
      body: `[{"id":"deep-ok","data":${nested}}]`,
    });
    // Assess
    expect(res.status).toBe(202);
    expect(recorded.events.map((e) => (e.event as { id: string }).id)).toEqual(['deep-ok']);
  });

  it('refuses with 413 a delivery Event Grid never sends: over 5,000 events or an event over 1 MB', async () => {
    // Prepare
    const notify = (body: string) =>
      fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`, {
        method: 'POST',
        headers: { 'aeg-event-type': 'Notification' },
        body,
      });
    // Act
    const tooMany = await notify(JSON.stringify(Array.from({ length: 5_001 }, (_, i) => ({ id: `m-${i}` }))));
    const tooLarge = await notify(JSON.stringify([{ id: 'big', data: 'x'.repeat(1024 * 1024) }]));
    // Assess
    expect([tooMany.status, tooLarge.status]).toEqual([413, 413]);
    expect(recorded.events).toEqual([]);
  });

  it('processes a Notification whatever the method the host route takes (GET, DELETE), as the extension does', async () => {
    // Act
    const del = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`, {
      method: 'DELETE',
      headers: { 'aeg-event-type': 'Notification' },
      body: JSON.stringify([keyVaultEvent('by-delete')]),
    });
    // Assess
    expect(del.status).toBe(202);
    expect(recorded.events.map((e) => (e.event as { id: string }).id)).toEqual(['by-delete']);
  });

  it('answers 400 to an invalid Host header and never 500 to a malformed percent-encoding', async () => {
    // Prepare
    const url = new URL(host.url);
    const raw = (path: string, hostHeader: string) =>
      new Promise<number>((resolvePromise, reject) => {
        const req = httpRequest(
          {
            host: url.hostname,
            port: url.port,
            path,
            method: 'GET',
            headers: { host: hostHeader },
            setHost: false,
          },
          (res) => {
            res.resume();
            resolvePromise(res.statusCode ?? 0);
          },
        );
        req.on('error', reject);
        req.end();
      });
    // Act
    const spaceInHost = await raw('/api/hello', 'a b');
    const bracket = await raw('/api/hello', '[');
    const slash = await raw('/api/hello', 'host/path');
    const admin = await raw('/admin/functions/%E0%A4%A', url.host);
    const route = await raw('/api/items/%E0%A4%A', url.host);
    const fine = await raw('/api/hello', url.host);
    // Assess
    expect([spaceInHost, bracket, slash]).toEqual([400, 400, 400]);
    expect(admin).toBe(404);
    expect(route).toBe(404);
    expect(fine).toBe(200);
  });

  it('answers 500 to Event Grid when an invocation fails, so that Event Grid retries', async () => {
    // Act
    const res = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=failingEvent`, {
      method: 'POST',
      headers: { 'aeg-event-type': 'Notification' },
      body: JSON.stringify([keyVaultEvent('f-1')]),
    });
    // Assess
    expect(res.status).toBe(500);
    expect(await res.text()).not.toContain('event handler failed');
  });

  it('runs a timer function again per its retry options, passing retryContext with the last exception', async () => {
    // Act
    const res = await fetch(`${host.url}/admin/functions/flakyTimer`, { method: 'POST', body: '{}' });
    await eventually(() => recorded.flakyAttempts.length >= 3, 'three attempts of flakyTimer');
    await host.invoker.drain();
    // Assess
    expect(res.status).toBe(202);
    expect(recorded.flakyAttempts).toEqual([
      { retryCount: 0, maxRetryCount: 2, exceptionMessage: undefined },
      { retryCount: 1, maxRetryCount: 2, exceptionMessage: 'flaky failure 1' },
      { retryCount: 2, maxRetryCount: 2, exceptionMessage: 'flaky failure 2' },
    ]);
  });

  it('ignores a retry policy on an Event Grid function, as the host does (Event Grid redelivers instead)', async () => {
    // Act
    const res = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=eventWithRetry`, {
      method: 'POST',
      headers: { 'aeg-event-type': 'Notification' },
      body: JSON.stringify([keyVaultEvent('once')]),
    });
    // Assess
    expect(res.status).toBe(500);
    expect(recorded.events).toHaveLength(1);
    expect(
      logger.lines.some(
        (l) => l.startsWith('warn') && l.includes('Retry options of "eventWithRetry" are ignored'),
      ),
    ).toBe(true);
  });

  it('lists the registered functions with their trigger types and bindings, like the admin API', async () => {
    // Act
    const res = await fetch(`${host.url}/admin/functions`);
    const list = (await res.json()) as Array<{
      name: string;
      invoke_url_template: string | null;
      config: { bindings: Array<{ type: string; direction: string }> };
    }>;
    // Assess
    expect(res.status).toBe(200);
    const triggerOf = (name: string) =>
      list.find((f) => f.name === name)?.config.bindings.find((b) => /trigger$/i.test(b.type))?.type;
    expect(triggerOf('hello')).toBe('httpTrigger');
    expect(triggerOf('onEvent')).toBe('eventGridTrigger');
    expect(triggerOf('everySecond')).toBe('timerTrigger');
    expect(triggerOf('queued')).toBe('queueTrigger');
    expect(list.find((f) => f.name === 'item')?.invoke_url_template).toBe(
      `${host.url}/api/items/{id:int}/{tag?}`,
    );
    expect(list.find((f) => f.name === 'onEvent')?.invoke_url_template).toBe(
      `${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`,
    );
  });

  it('reports the host as running', async () => {
    // Act
    const res = await fetch(`${host.url}/admin/host/status`);
    // Assess
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ state: 'Running' });
  });

  it('runs a timer function now on POST /admin/functions/<name> (202) with the timer trigger value', async () => {
    // Act
    const res = await fetch(`${host.url}/admin/functions/yearly`, { method: 'POST', body: '{"input":""}' });
    await eventually(() => recorded.timers.length > 0, 'the yearly timer ran');
    // Assess
    expect(res.status).toBe(202);
    const { timer } = recorded.timers[0] as (typeof recorded.timers)[number];
    expect(timer.isPastDue).toBe(false);
    expect(timer.schedule).toEqual({ adjustForDST: true });
    expect(Object.keys(timer.scheduleStatus ?? {}).sort()).toEqual(['last', 'lastUpdated', 'next']);
  });

  it('refuses admin invocations of unknown functions, of HTTP functions and with a malformed body', async () => {
    // Act
    const unknown = await fetch(`${host.url}/admin/functions/nope`, { method: 'POST', body: '{}' });
    const http = await fetch(`${host.url}/admin/functions/hello`, { method: 'POST', body: '{}' });
    const bad = await fetch(`${host.url}/admin/functions/yearly`, { method: 'POST', body: 'not json' });
    // Assess
    expect([unknown.status, http.status, bad.status]).toEqual([404, 400, 400]);
    expect(recorded.timers).toEqual([]);
  });

  it('reports trigger types without a listener as not served, without failing', () => {
    // Assess
    expect(host.notServed).toEqual(['queued']);
    expect(
      logger.lines.some((l) => l.startsWith('warn') && l.includes('"queued" (queueTrigger) is not served')),
    ).toBe(true);
  });

  it('hands requests no host route answers to mounted handlers before answering 404', async () => {
    // Prepare
    host.server.mount(async (req, res) => {
      if (!req.url?.startsWith('/sandbox/')) return false;
      res.statusCode = 200;
      res.end('sandbox here');
      return true;
    });
    // Act
    const mounted = await fetch(`${host.url}/sandbox/clock`);
    const other = await fetch(`${host.url}/elsewhere`);
    // Assess
    expect(mounted.status).toBe(200);
    expect(await mounted.text()).toBe('sandbox here');
    expect(other.status).toBe(404);
  });
});

describe('local host with key checks on', () => {
  let host: RunningLocalHost;
  const keys = { master: 'test-master-key', fn: 'test-function-key', eventGrid: 'test-eventgrid-key' };

  beforeAll(async () => {
    host = await startLocalHost({
      appEntry: loadFixtureApp,
      port: 0,
      logger: captureLogger(),
      startTimers: false,
      env: {
        STAMPKEEPER_LOCAL_REQUIRE_KEYS: 'true',
        STAMPKEEPER_LOCAL_MASTER_KEY: keys.master,
        STAMPKEEPER_LOCAL_FUNCTION_KEY: keys.fn,
        STAMPKEEPER_LOCAL_EVENTGRID_KEY: keys.eventGrid,
      },
    });
  });
  afterAll(async () => {
    await host.stop();
  });
  afterEach(() => resetRecorded());

  it('lets anonymous functions through and checks function and admin levels like the host', async () => {
    // Act
    const anonymous = await fetch(`${host.url}/api/hello`);
    const noKey = await fetch(`${host.url}/api/guarded`);
    const wrongKey = await fetch(`${host.url}/api/guarded?code=wrong`);
    const fnKeyHeader = await fetch(`${host.url}/api/guarded`, { headers: { 'x-functions-key': keys.fn } });
    const fnKeyOnAdmin = await fetch(`${host.url}/api/adminOnly?code=${keys.fn}`);
    const masterOnAdmin = await fetch(`${host.url}/api/adminOnly?code=${keys.master}`);
    // Assess
    expect(anonymous.status).toBe(200);
    expect(noKey.status).toBe(401);
    expect(wrongKey.status).toBe(401);
    expect(fnKeyHeader.status).toBe(200);
    expect(fnKeyOnAdmin.status).toBe(401);
    expect(masterOnAdmin.status).toBe(200);
  });

  it('requires the master key on the admin API and the system (or master) key on the Event Grid webhook', async () => {
    // Prepare
    const webhook = `${host.url}/runtime/webhooks/eventgrid?functionName=onEvent`;
    const post = (url: string) =>
      fetch(url, {
        method: 'POST',
        headers: { 'aeg-event-type': 'Notification' },
        body: JSON.stringify([keyVaultEvent('k-1')]),
      });
    // Act
    const adminNoKey = await fetch(`${host.url}/admin/functions`);
    const adminFnKey = await fetch(`${host.url}/admin/functions`, {
      headers: { 'x-functions-key': keys.fn },
    });
    const adminMaster = await fetch(`${host.url}/admin/functions`, {
      headers: { 'x-functions-key': keys.master },
    });
    const hookNoKey = await post(webhook);
    const hookSystemKey = await post(`${webhook}&code=${keys.eventGrid}`);
    // Assess
    expect([adminNoKey.status, adminFnKey.status, adminMaster.status]).toEqual([401, 401, 200]);
    expect([hookNoKey.status, hookSystemKey.status]).toEqual([401, 202]);
    expect(recorded.events).toHaveLength(1);
    expect(await adminNoKey.text()).not.toContain(keys.master);
  });
});

describe('local host timers', () => {
  afterEach(() => resetRecorded());

  it('fires a timer on its NCRONTAB schedule', async () => {
    // Prepare
    const host = await startLocalHost({
      appEntry: loadFixtureApp,
      port: 0,
      logger: captureLogger(),
      env: timerStorage(),
    });
    try {
      // Act
      await eventually(
        () => recorded.timers.some((t) => t.fn === 'everySecond'),
        'the every-second timer fired',
      );
      // Assess
      const fired = recorded.timers.find((t) => t.fn === 'everySecond');
      expect(fired?.timer.isPastDue).toBe(false);
      // A schedule firing more than once a minute is not monitored: the runtime sends no status.
      expect(fired?.timer.scheduleStatus).toBeNull();
    } finally {
      await host.stop();
    }
  });
});

describe('local host lifecycle', () => {
  it('stops cleanly: the server no longer listens and the port is closed', async () => {
    // Prepare
    const host = await startLocalHost({
      appEntry: loadFixtureApp,
      port: 0,
      logger: captureLogger(),
      env: timerStorage(),
    });
    const url = host.url;
    // Act
    await host.stop();
    // Assess
    expect(host.server.server.listening).toBe(false);
    await expect(fetch(`${url}/api/hello`)).rejects.toThrow();
  });

  it('fails an invocation that outlives host.json functionTimeout', async () => {
    // Prepare
    const logger = captureLogger();
    const host = await startLocalHost({
      appEntry: loadFixtureApp,
      port: 0,
      logger,
      startTimers: false,
      hostConfig: { ...parseHostConfig({ version: '2.0' }), functionTimeoutMs: 50 },
    });
    try {
      // Act
      const slow = await fetch(`${host.url}/api/slow`);
      const fast = await fetch(`${host.url}/api/hello`);
      // Assess
      expect(slow.status).toBe(500);
      expect(fast.status).toBe(200);
      expect(
        logger.lines.some(
          (l) => l.startsWith('error [slow]') && l.includes('FunctionTimeoutException: Timeout value of'),
        ),
      ).toBe(true);
    } finally {
      await host.stop();
    }
  });

  it('leaves no server, socket or timer behind after stop (timers running, a request served)', async () => {
    // Prepare
    const count = (kind: string) => process.getActiveResourcesInfo().filter((r) => r === kind).length;
    const snapshot = () => ({
      servers: count('TCPServerWrap'),
      sockets: count('TCPSocketWrap'),
      timers: count('Timeout'),
    });
    const before = snapshot();
    const host = await startLocalHost({
      appEntry: loadFixtureApp,
      port: 0,
      logger: captureLogger(),
      env: timerStorage(),
    });
    await fetch(`${host.url}/api/hello`);
    const running = snapshot();
    // Act
    await host.stop();
    // Assess (handles are released asynchronously after close: bounded poll)
    expect(running.servers).toBe(before.servers + 1);
    expect(running.timers).toBeGreaterThan(before.timers);
    await eventually(() => {
      const now = snapshot();
      return now.servers === before.servers && now.sockets <= before.sockets && now.timers <= before.timers;
    }, 'every handle of the host released');
  });

  it('fails to start on a port that is taken, and cleans up so that the next start works', async () => {
    // Prepare
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as AddressInfo).port;
    try {
      // Act / Assess
      await expect(
        startLocalHost({ appEntry: loadFixtureApp, port, logger: captureLogger(), startTimers: false }),
      ).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await new Promise((r) => blocker.close(r));
    }
    const next = await startLocalHost({
      appEntry: loadFixtureApp,
      port: 0,
      logger: captureLogger(),
      startTimers: false,
    });
    const res = await fetch(`${next.url}/api/hello`);
    await next.stop();
    expect(res.status).toBe(200);
  });

  it('refuses to run timers without AzureWebJobsStorage, as Core Tools does', async () => {
    // Prepare
    const saved = process.env.AzureWebJobsStorage;
    delete process.env.AzureWebJobsStorage;
    try {
      // Act / Assess
      await expect(
        startLocalHost({ appEntry: loadFixtureApp, port: 0, logger: captureLogger() }),
      ).rejects.toThrow(/Timer functions need AzureWebJobsStorage/);
    } finally {
      if (saved !== undefined) process.env.AzureWebJobsStorage = saved;
    }
    const withoutTimers = await startLocalHost({
      appEntry: loadFixtureApp,
      port: 0,
      logger: captureLogger(),
      startTimers: false,
    });
    await withoutTimers.stop();
  });

  it('refuses a second host in the same process while one runs', async () => {
    // Prepare
    const first = await startLocalHost({
      appEntry: loadFixtureApp,
      port: 0,
      logger: captureLogger(),
      startTimers: false,
    });
    try {
      // Act
      const second = startLocalHost({
        appEntry: loadFixtureApp,
        port: 0,
        logger: captureLogger(),
        startTimers: false,
        env: { STAMPKEEPER_SECOND_HOST_SETTING: 'from the refused host' },
      });
      const envMeanwhile = process.env.STAMPKEEPER_SECOND_HOST_SETTING;
      // Assess: refused, and the running host never saw the refused host's settings
      await expect(second).rejects.toThrow(/Another local host is running/);
      expect(envMeanwhile).toBeUndefined();
      expect(process.env.STAMPKEEPER_SECOND_HOST_SETTING).toBeUndefined();
    } finally {
      await first.stop();
    }
  });
});
