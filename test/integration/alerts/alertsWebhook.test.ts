import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpRequest, type HttpResponseInit, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { alerts } from '../../../src/functions/alerts';
import { ACTION_GROUP_APP_ID, ROLES } from '../../../src/lib/app/auth';
import { resetDeps } from '../../../src/lib/app/deps';
import { newId } from '../../../src/lib/core/ids';
import { parseCommonAlert } from '../../../src/lib/remediation/alert';
import { alertKey } from '../../../src/lib/remediation/handleAlert';
import { createStateStores, type StateStores } from '../../../src/lib/state';
import { storageConnectionString, uniquePrefix } from '../../support/storage';
import { commonAlert, monitorSampleFiles, payloadOf } from '../../unit/remediation/alertFactory';

/** A secret-looking path segment: the webhook URL is a credential and must never be echoed. */
const HOOK_TOKEN = 'hook-token-5f1c9a7e';
const VM =
  '/subscriptions/<subscription ID>/resourcegroups/pipelinealertrg/providers/microsoft.compute/virtualmachines/wcus-r2-gen2';

interface Post {
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/** A loopback receiver of the webhook channel: records every post; can answer 503 a given number of times. */
class Receiver {
  readonly posts: Post[] = [];
  failNext = 0;
  private server: Server | undefined;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.posts.push({ headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        if (this.failNext > 0) {
          this.failNext--;
          res.writeHead(503).end();
          return;
        }
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/hooks/${HOOK_TOKEN}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

const logs: string[] = [];

/**
 * The principal built-in authentication injects for an action group's secure webhook call (Azure
 * Monitor's service principal holding the ActionGroupsSecureWebhook role); see
 * test/e2e/builtInAuth.test.ts for the authorization itself, through the local host.
 */
const ACTION_GROUP_PRINCIPAL = {
  'x-ms-client-principal': Buffer.from(
    JSON.stringify({
      auth_typ: 'aad',
      claims: [
        { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: newId() },
        { typ: 'appid', val: ACTION_GROUP_APP_ID },
        { typ: 'roles', val: ROLES.alertDelivery },
      ],
      role_typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
    }),
  ).toString('base64'),
};

// biome-ignore lint/suspicious/noExplicitAny: response bodies are read freely in assertions
async function deliver(body: string): Promise<HttpResponseInit & { jsonBody?: any }> {
  const request = new HttpRequest({
    method: 'POST',
    url: 'http://localhost/api/alerts',
    headers: { 'content-type': 'application/json', ...ACTION_GROUP_PRINCIPAL },
    body: { string: body },
  });
  const context = new InvocationContext({
    invocationId: newId(),
    functionName: 'alerts',
    logHandler: (_level, ...args) => logs.push(args.map(String).join(' ')),
  });
  return alerts(request, context);
}

describe('POST /api/alerts (action group webhook) on Azurite', () => {
  const receiver = new Receiver();
  let dir: string;
  /** The app's state, read from outside the app as an operator would. */
  let state: StateStores;

  beforeAll(async () => {
    const url = await receiver.start();
    dir = mkdtempSync(join(tmpdir(), 'stampkeeper-alerts-'));
    const policyPath = join(dir, 'policy.yaml');
    writeFileSync(
      policyPath,
      [
        'version: 1',
        'playbooks: []',
        'notifications:',
        '  defaults: [alerts-hook]',
        '  channels:',
        '    - name: alerts-hook',
        '      type: webhook',
        '      urlSetting: ALERTS_TEST_WEBHOOK',
        '',
      ].join('\n'),
    );
    const prefix = uniquePrefix('a');
    process.env.AzureWebJobsStorage = storageConnectionString();
    process.env.STAMPKEEPER_TABLE_PREFIX = prefix;
    process.env.STAMPKEEPER_WORK_QUEUE = `${prefix}-work`;
    process.env.STAMPKEEPER_POLICY_PATH = policyPath;
    process.env.STAMPKEEPER_ENVIRONMENT = 'itest';
    process.env.ALERTS_TEST_WEBHOOK = url;
    // Set by the platform when built-in authentication is on (the action group calls through it).
    process.env.WEBSITE_AUTH_ENABLED = 'True';
    resetDeps();
    state = createStateStores({
      connectionString: storageConnectionString(),
      tablePrefix: prefix,
      workQueueName: `${prefix}-work`,
    });
  });

  afterAll(async () => {
    resetDeps();
    await receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    receiver.posts.length = 0;
    receiver.failNext = 0;
  });

  it('handles the same alert delivered twice once: 202, then 200 duplicate; one audit record, one post', async () => {
    // Prepare
    const alertId = `/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/${newId()}`;
    const body = JSON.stringify(commonAlert({ alertId, monitorCondition: 'Fired', severity: 'Sev1' }));
    const since = new Date(Date.now() - 60_000);

    // Act
    const first = await deliver(body);
    const second = await deliver(body);

    // Assess
    expect(first.status).toBe(202);
    expect(first.jsonBody).toMatchObject({ status: 'accepted', outcome: 'reported' });
    expect(first.jsonBody.correlationId).toEqual(expect.any(String));
    expect(second.status).toBe(200);
    expect(second.jsonBody).toMatchObject({ status: 'duplicate', auditId: first.jsonBody.auditId });
    const records = (await state.audit.query({ since, target: VM.toLowerCase() })).filter(
      (r) => r.before?.alertId === alertId,
    );
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      id: first.jsonBody.auditId,
      action: 'alert.receive',
      outcome: 'reported',
    });
    expect(receiver.posts).toHaveLength(1);
    expect(receiver.posts[0]!.body).toMatchObject({
      specversion: '1.0',
      type: 'com.stampkeeper.alert.fired',
      subject: VM.toLowerCase(),
      data: { severity: 'critical', alertSeverity: 'Sev1', alertId, alertRule: 'WCUS-R2-Gen2' },
    });
  });

  it.each(monitorSampleFiles())('accepts and reports the published sample %s', async (file) => {
    // Prepare: the test-action samples share one alert id; each delivery here is its own alert.
    const payload = payloadOf(file) as { data: { essentials: Record<string, unknown> } };
    payload.data.essentials.alertId = `${payload.data.essentials.alertId}-${newId()}`;

    // Act
    const response = await deliver(JSON.stringify(payload));

    // Assess
    expect(response.status).toBe(202);
    expect(response.jsonBody).toMatchObject({ status: 'accepted', outcome: 'reported' });
    expect(receiver.posts).toHaveLength(1);
  });

  it('answers 400 for a body that is not JSON and counts the rejection', async () => {
    // Act
    const response = await deliver('{"schemaId": "azureMonitorCommonAlertSchema", garbage');

    // Assess
    expect(response.status).toBe(400);
    expect(response.jsonBody.error).toMatchObject({
      code: 'ValidationFailed',
      problems: ['(body): not valid JSON'],
    });
    const buckets = await state.rejections.list({
      since: new Date(Date.now() - 3_600_000),
      until: new Date(),
    });
    expect(buckets).toEqual(
      expect.arrayContaining([expect.objectContaining({ kind: 'alert', reason: 'not-json', count: 1 })]),
    );
    const records = await state.audit.query({ target: 'alerts/azure-monitor' });
    expect(records).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          action: 'alert.reject',
          outcome: 'rejected',
          reason: '(body): not valid JSON',
        }),
      ]),
    );
    expect(receiver.posts).toHaveLength(0);
  });

  it('answers 400 with every problem for an invalid alert, audited without its payload', async () => {
    // Prepare
    const payload = commonAlert({
      severity: 'Sev7',
      firedDateTime: 'yesterday',
      description: 'payload-marker-91',
    });

    // Act
    const response = await deliver(JSON.stringify(payload));

    // Assess
    expect(response.status).toBe(400);
    expect(response.jsonBody.error.problems).toEqual([
      "data.essentials.severity: 'Sev7' is not one of Sev0, Sev1, Sev2, Sev3, Sev4",
      'data.essentials.firedDateTime: must be an ISO 8601 time with a zone (e.g. 2021-11-16T08:29:01.29Z)',
    ]);
    const records = await state.audit.query({ target: 'alerts/azure-monitor' });
    const rejection = records.find((r) => r.after?.reason === 'invalid-alert');
    expect(rejection).toMatchObject({ action: 'alert.reject', outcome: 'rejected' });
    expect(JSON.stringify(records)).not.toContain('payload-marker-91');
    expect(receiver.posts).toHaveLength(0);
  });

  it('answers 503 with Retry-After when the channel fails transiently; the retry posts once more and completes', async () => {
    // Prepare
    receiver.failNext = 1;
    const alertId = `/subscriptions/s/providers/Microsoft.AlertsManagement/alerts/${newId()}`;
    const body = JSON.stringify(commonAlert({ alertId, monitorCondition: 'Fired' }));

    // Act
    const first = await deliver(body);
    const retry = await deliver(body);
    const third = await deliver(body);

    // Assess
    expect(first.status).toBe(503);
    expect(first.headers).toMatchObject({ 'retry-after': '5' });
    expect(retry.status).toBe(202);
    expect(third.status).toBe(200);
    expect(receiver.posts).toHaveLength(2);
    expect(receiver.posts[0]!.headers['ce-id']).toBe(receiver.posts[1]!.headers['ce-id']);
  });

  it('answers 503 (which action groups retry, unlike 409) while another attempt holds the same alert', async () => {
    // Prepare
    const payload = commonAlert({ alertId: `/x/alerts/${newId()}`, monitorCondition: 'Fired' });
    await state.idempotency.claim(alertKey(parseCommonAlert(payload)), {
      owner: 'another-instance',
      leaseMs: 60_000,
    });

    // Act
    const response = await deliver(JSON.stringify(payload));

    // Assess
    expect(response.status).toBe(503);
    expect(response.headers).toMatchObject({ 'retry-after': '5' });
    expect(receiver.posts).toHaveLength(0);
  });

  it('answers 400 for a body far larger than any alert, without parsing it', async () => {
    // Act
    const response = await deliver(
      `{"schemaId":"azureMonitorCommonAlertSchema","pad":"${'x'.repeat(600 * 1024)}"}`,
    );

    // Assess
    expect(response.status).toBe(400);
    expect(response.jsonBody.error.problems).toEqual(['(body): larger than 524288 bytes']);
    expect(receiver.posts).toHaveLength(0);
  });

  it("writes the notifier's lines through the invocation that called it, never straight to the console", async () => {
    // Prepare
    receiver.failNext = 1;
    const body = JSON.stringify(commonAlert({ alertId: `/x/alerts/${newId()}`, monitorCondition: 'Fired' }));
    const direct: unknown[][] = [];
    const methods = ['log', 'info', 'warn', 'error', 'debug'] as const;
    const originals = methods.map((m) => [m, console[m]] as const);
    for (const m of methods) console[m] = (...args: unknown[]) => direct.push(args);
    const before = logs.length;

    // Act
    try {
      await deliver(body);
    } finally {
      for (const [m, original] of originals) console[m] = original as never;
    }

    // Assess
    const lines = logs.slice(before).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toContainEqual(
      expect.objectContaining({
        message: 'notification channel failed',
        operation: 'notify',
        function: 'alerts',
      }),
    );
    expect(direct).toEqual([]);
  });

  it('never echoes the webhook URL (a credential) in responses, logs or audit records', async () => {
    // Prepare
    receiver.failNext = 1;
    const body = JSON.stringify(commonAlert({ alertId: `/x/alerts/${newId()}`, monitorCondition: 'Fired' }));

    // Act
    const failed = await deliver(body);
    const records = await state.audit.query({});

    // Assess
    expect(failed.status).toBe(503);
    expect(JSON.stringify(failed)).not.toContain(HOOK_TOKEN);
    expect(JSON.stringify(records)).not.toContain(HOOK_TOKEN);
    expect(logs.join('\n')).not.toContain(HOOK_TOKEN);
  });
});
