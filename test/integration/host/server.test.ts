import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { parseHostConfig } from '../../../src/local/host/hostConfig';
import { createLocalServer, type LocalServer } from '../../../src/local/host/server';
import type { InvocationInput, Invoker, RegisteredFunction } from '../../../src/local/host/types';
import { captureLogger } from '../triggers/support';

// The host's HTTP server on a real socket, with a hand-written Invoker (the invocation path has its
// own tests): request limits and what reaches the log.

const timerFn: RegisteredFunction = {
  name: 'tick',
  metadata: {
    name: 'tick',
    bindings: { t: { type: 'timerTrigger', direction: 'in', schedule: '0 0 * * * *' } },
  },
  callback: () => undefined,
  triggerName: 't',
  trigger: { type: 'timerTrigger', direction: 'in', schedule: '0 0 * * * *' },
};

class RecordingInvoker implements Invoker {
  readonly inputs: InvocationInput[] = [];
  async invoke(_fn: RegisteredFunction, input: InvocationInput) {
    this.inputs.push(input);
    return { ok: true, attempts: 1 } as const;
  }
}

let server: LocalServer | undefined;

async function start(maxBodyBytes?: number) {
  const logger = captureLogger();
  const invoker = new RecordingInvoker();
  server = createLocalServer({
    functions: () => [timerFn],
    invoker,
    hostConfig: parseHostConfig({ version: '2.0' }),
    keys: { required: false },
    logger,
    maxBodyBytes,
  });
  await server.listen(0, '127.0.0.1');
  return { server, logger, invoker };
}

/** POSTs `body` with node:http and resolves with the status, or rejects when the socket dies first. */
function post(url: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(body);
  });
}

afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('local host server', () => {
  it('answers 413 to a body over the limit before closing the connection, and invokes nothing', async () => {
    // Prepare
    const { server, invoker } = await start(1024);
    const body = Buffer.from(JSON.stringify({ input: 'x'.repeat(256 * 1024) }));
    // Act
    const status = await post(`${server.url}/admin/functions/tick`, body);
    const small = await post(`${server.url}/admin/functions/tick`, Buffer.from('{"input":"ok"}'));
    // Assess
    expect(status).toBe(413);
    expect(small).toBe(202);
    expect(invoker.inputs).toHaveLength(1);
  });

  it('logs a failed request with its path, never its query (which may carry ?code=<key>)', async () => {
    // Prepare
    const { server, logger } = await start();
    server.mount(async () => {
      throw new Error('mounted handler failed');
    });
    // Act
    const res = await fetch(`${server.url}/sandbox/thing?code=c2VjcmV0LWZ1bmN0aW9uLWtleQ&x=1`);
    // Assess
    expect(res.status).toBe(500);
    const line = logger.lines.find((l) => l.startsWith('error request GET'));
    expect(line).toBe('error request GET /sandbox/thing failed: Error: mounted handler failed');
    expect(logger.lines.join('\n')).not.toContain('c2VjcmV0LWZ1bmN0aW9uLWtleQ');
  });
});
