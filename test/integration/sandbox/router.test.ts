import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpHeaders, createPipelineRequest } from '@azure/core-rest-pipeline';
import { afterEach, describe, expect, it } from 'vitest';
import { createSandbox } from '../../../src/local/sandbox';

describe('sandbox http client routing', () => {
  it('passes loopback requests through to the real network (Azurite, the local host)', async () => {
    // Prepare
    const server = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`real ${req.method} ${req.url}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const sandbox = createSandbox();

    try {
      // Act
      const response = await sandbox.httpClient.sendRequest(
        createPipelineRequest({
          url: `http://127.0.0.1:${port}/devstoreaccount1?comp=list`,
          allowInsecureConnection: true,
        }),
      );

      // Assess
      expect(response.status).toBe(200);
      expect(response.bodyAsText).toBe('real GET /devstoreaccount1?comp=list');
      expect(sandbox.webhooks()).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it.each([
    // management.azure.com, *.documents.azure.com, *.blob.core.windows.net and *.servicebus.windows.net
    // are emulated (arm/): these hosts are not.
    'https://contoso.table.core.windows.net/orders',
    'https://crprod.azurecr.io/v2/orders/manifests/latest',
    'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token',
    'https://stprod.queue.core.windows.net/q/messages',
    'https://apim-prod.azure-api.net/orders',
  ])('answers 501 naming the host for an Azure host it does not emulate: %s', async (url) => {
    // Prepare
    const sandbox = createSandbox();
    const host = new URL(url).hostname;

    // Act
    const response = await sandbox.httpClient.sendRequest(
      createPipelineRequest({ url, method: 'POST', body: '{}' }),
    );

    // Assess
    expect(response.status).toBe(501);
    const body = JSON.parse(response.bodyAsText!) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('NotImplemented');
    expect(body.error.message).toContain(host);
    expect(body.error.message).toContain('not emulated by the sandbox');
    expect(sandbox.webhooks()).toEqual([]);
  });

  it.each([
    'https://contoso.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/d',
    'https://prod-27.westeurope.logic.azure.com:443/workflows/0a1b/triggers/manual/paths/invoke?api-version=2016-06-01&sig=s',
    'https://default1234.09.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/0a1b/triggers/manual/paths/invoke?api-version=1&sig=s',
    'https://hooks.example.org/notify',
  ])('sends webhook hosts (Teams, Workflows, generic) to the webhook sink: %s', async (url) => {
    // Prepare
    const sandbox = createSandbox();

    // Act
    const response = await sandbox.httpClient.sendRequest(
      createPipelineRequest({ url, method: 'POST', body: '{"text":"hi"}' }),
    );

    // Assess
    expect(response.status).toBe(200);
    expect(sandbox.webhooks()).toHaveLength(1);
  });
});

describe('sandbox webhook sink credentials', () => {
  const PATH_SECRET = 'pathSecret0123456789abcdefABCDEF';
  const SIG = 'querySignature-9876543210';
  let server: Server | undefined;

  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  it('keeps no path or query credential of a webhook URL, in webhooks() nor in /sandbox/notifications', async () => {
    // Prepare
    const sandbox = createSandbox();
    server = createServer((req, res) => void sandbox.handleHttp(req, res));
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const incoming = `https://contoso.webhook.office.com/webhookb2/11111111-2222-3333-4444-555555555555@66666666-7777-8888-9999-000000000000/IncomingWebhook/${PATH_SECRET}/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee`;
    const workflow = `https://prod-27.westeurope.logic.azure.com:443/workflows/0a1b2c/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=${SIG}`;

    // Act
    for (const url of [incoming, workflow]) {
      await sandbox.httpClient.sendRequest(
        createPipelineRequest({
          url,
          method: 'POST',
          headers: createHttpHeaders({ 'content-type': 'application/json' }),
          body: JSON.stringify({ type: 'message', text: 'rotated' }),
        }),
      );
    }
    const served = await (await fetch(`${base}/sandbox/notifications`)).text();

    // Assess
    const records = sandbox.webhooks();
    expect(records.map((r) => r.url)).toEqual([
      'https://contoso.webhook.office.com/webhookb2/***',
      'https://prod-27.westeurope.logic.azure.com/workflows/***',
    ]);
    for (const text of [JSON.stringify(records), served]) {
      expect(text).not.toContain(PATH_SECRET);
      expect(text).not.toContain(SIG);
      expect(text).not.toContain('11111111-2222');
    }
    expect(served).toContain('webhookb2/***');
  });
});
