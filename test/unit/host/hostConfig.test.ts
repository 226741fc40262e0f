import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ignoredHostJsonKeys, loadHostConfig, parseHostConfig } from '../../../src/local/host/hostConfig';

describe('host.json', () => {
  it('reads the project host.json: route prefix, queue and Service Bus settings, function timeout', () => {
    // Act
    const config = loadHostConfig(resolve(__dirname, '../../..'));
    // Assess
    expect(config.routePrefix).toBe('api');
    expect(config.queues.maxDequeueCount).toBe(5);
    expect(config.serviceBus.autoCompleteMessages).toBe(true);
    expect(config.serviceBus.maxConcurrentCalls).toBe(16);
    expect(config.functionTimeoutMs).toBeGreaterThan(0);
    expect(config.raw.extensionBundle).toMatchObject({ id: 'Microsoft.Azure.Functions.ExtensionBundle' });
  });

  it('holds no key that the runtime with extension bundle 4.x ignores', () => {
    // Prepare
    const raw = JSON.parse(readFileSync(resolve(__dirname, '../../../host.json'), 'utf8'));
    // Act
    const ignored = ignoredHostJsonKeys(raw);
    // Assess
    expect(ignored).toEqual([]);
    expect(raw.extensionBundle.version).toBe('[4.*, 5.0.0)');
  });

  it('names the keys extension bundle 4.x does not read, wherever they are', () => {
    // Act
    const ignored = ignoredHostJsonKeys({
      version: '2.0',
      functionTimout: '00:05:00',
      logging: { logLevel: { 'Function.alerts': 'Warning' }, console: { isEnabled: true } },
      extensions: {
        queues: { maxDequeueCount: 5, maxPollingInterval: '00:00:02' },
        serviceBus: {
          maxConcurrentCalls: 16,
          messageHandlerOptions: { autoComplete: true, maxConcurrentCalls: 16 },
          clientRetryOptions: { maxRetries: 3, jitter: 1 },
        },
        http: { routePrefix: 'api', customHeaders: { 'X-Content-Type-Options': 'nosniff' } },
      },
    });
    // Assess
    expect(ignored).toEqual([
      'functionTimout',
      'logging.console',
      'extensions.serviceBus.messageHandlerOptions',
      'extensions.serviceBus.clientRetryOptions.jitter',
    ]);
  });

  it('reads the listener lock settings of singleton, within the bounds of Storage leases', () => {
    // Act
    const defaults = parseHostConfig({ version: '2.0' }).singleton;
    const set = parseHostConfig({
      version: '2.0',
      singleton: { listenerLockPeriod: '00:00:30', listenerLockRecoveryPollingInterval: '00:00:20' },
    }).singleton;
    // Assess
    expect(defaults).toEqual({ listenerLockPeriodMs: 60_000, listenerLockRecoveryPollingIntervalMs: 60_000 });
    expect(set).toEqual({ listenerLockPeriodMs: 30_000, listenerLockRecoveryPollingIntervalMs: 20_000 });
    expect(() => parseHostConfig({ version: '2.0', singleton: { listenerLockPeriod: '00:02:00' } })).toThrow(
      /listenerLockPeriod must be from 00:00:15 to 00:01:00/,
    );
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
