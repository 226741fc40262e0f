import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPipelineRequest } from '@azure/core-rest-pipeline';
import { describe, expect, it } from 'vitest';
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
});
