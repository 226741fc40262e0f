/**
 * The dead-letter report on the real pieces: depth and growth read through the real
 * `MetricsClient` from the sandbox's Azure Monitor, counts from the archive on Azurite, alerts the
 * rate limit held back sent when due, and a growing queue reported to its channels once an hour.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { AzureMonitorMetricsReader, metricsEndpointFor } from '../../../src/lib/azure/metricsReader';
import { reportDeadLetters } from '../../../src/lib/deadletters/report';
import { monitoredSandbox, REGION, SB } from '../sandbox/monitor/estate';
import { type DeadLetterSetup, deadLetterMessages, drain, setupDeadLetters } from './support';

let setup: DeadLetterSetup | undefined;
afterEach(async () => {
  await setup?.close();
  setup = undefined;
});

const entity = (name: string) => `  - name: ${name}
    namespaceId: ${SB}
    region: ${REGION}
    queue: ${name}
    owner: team-${name}
    alerts: { minIntervalMinutes: 15 }`;

describe('dead-letter report', { timeout: 120_000 }, () => {
  it('reports depth and growth from Monitor, sends held-back alerts when due, and announces a growing queue once per hour', async () => {
    // Prepare: orders got a storm (one alert sent, later arrivals held back); payments grows in Monitor.
    setup = await setupDeadLetters(
      [{ name: 'orders' }, { name: 'payments' }],
      `${entity('orders')}\n${entity('payments')}`,
    );
    const sandbox = monitoredSandbox();
    const deps = {
      ...setup.deps,
      metrics: new AzureMonitorMetricsReader(sandbox.credential, {
        endpoints: { [REGION]: metricsEndpointFor(REGION) },
        httpClient: sandbox.httpClient,
        retryOptions: { maxRetries: 0 },
      }),
    };
    await deadLetterMessages(setup, 'orders', 3, { reason: 'ValidationFailed' });
    await drain(setup, 'orders', 'orders');
    await deadLetterMessages(setup, 'orders', 2, { reason: 'ConsumerTimeout', prefix: 'late' });
    await drain(setup, 'orders', 'orders');
    const alertsBefore = setup.channel.sent.filter((n) => n.type === 'com.stampkeeper.deadletters.arrived');
    await setup.clock.advance(16 * 60_000);

    // Act
    const first = await reportDeadLetters(deps, { correlationId: 'report-1' });
    const second = await reportDeadLetters(deps, { correlationId: 'report-2' });

    // Assess
    expect(alertsBefore).toHaveLength(1);
    expect(first).toEqual([
      expect.objectContaining({
        entity: 'orders',
        depth: 0,
        growth: 0,
        archived24h: 5,
        byReason: { ValidationFailed: 3, ConsumerTimeout: 2 },
        alert: 'sent',
      }),
      expect.objectContaining({ entity: 'payments', depth: 10, growth: 8, archived24h: 0, alert: 'quiet' }),
    ]);
    expect(second.map((r) => r.alert)).toEqual(['quiet', 'quiet']);
    const arrived = setup.channel.sent.filter((n) => n.type === 'com.stampkeeper.deadletters.arrived');
    expect(arrived).toHaveLength(2);
    expect(arrived[1]!.data).toMatchObject({ entity: 'orders', total: 2, byReason: { ConsumerTimeout: 2 } });
    const growing = setup.channel.sent.filter((n) => n.type === 'com.stampkeeper.deadletters.growing');
    expect(growing.map((n) => n.subject)).toEqual(['deadletters/payments']);
    expect(growing[0]!.facts).toMatchObject({ Depth: '10', Growth: '8' });
  });
});
