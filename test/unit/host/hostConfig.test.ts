import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadHostConfig, parseHostConfig } from '../../../src/local/host/hostConfig';

describe('host.json', () => {
  it('reads the project host.json: route prefix, queue and Service Bus settings, function timeout', () => {
    // Act
    const config = loadHostConfig(resolve(__dirname, '../../..'));
    // Assess
    expect(config.routePrefix).toBe('api');
    expect(config.queues.maxDequeueCount).toBe(5);
    expect(config.serviceBus.messageHandlerOptions?.autoComplete).toBe(true);
    expect(config.functionTimeoutMs).toBeGreaterThan(0);
    expect(config.raw.extensionBundle).toMatchObject({ id: 'Microsoft.Azure.Functions.ExtensionBundle' });
  });

  it('uses the host defaults for what the file leaves out', () => {
    // Act
    const config = parseHostConfig({ version: '2.0' });
    // Assess
    expect(config.routePrefix).toBe('api');
    expect(config.queues.maxDequeueCount).toBe(5);
  });

  it('accepts an empty route prefix', () => {
    // Act / Assess
    expect(parseHostConfig({ version: '2.0', extensions: { http: { routePrefix: '' } } }).routePrefix).toBe(
      '',
    );
  });

  it.each([
    [[], /must hold a JSON object/],
    [{ version: '1.0' }, /"version" must be "2.0"/],
    [{ version: '2.0', extensions: { http: { routePrefix: 3 } } }, /routePrefix must be a string/],
    [
      { version: '2.0', extensions: { queues: { maxDequeueCount: 0 } } },
      /maxDequeueCount must be a positive integer/,
    ],
    [{ version: '2.0', functionTimeout: '10 minutes' }, /functionTimeout must be a TimeSpan/],
  ])('rejects %j clearly', (raw, message) => {
    // Act / Assess
    expect(() => parseHostConfig(raw)).toThrow(message);
  });
});
