import { describe, expect, it } from 'vitest';
import { createSandboxClock } from '../../../../src/local/sandbox';
import { ArmOperations } from '../../../../src/local/sandbox/arm/operations';

const SUB = '00000000-0000-0000-0000-000000000000';

describe('sandbox long-running ARM operations', () => {
  it('answers the result resource 202 with Location while running, then the result, and the status resource InProgress then Succeeded', async () => {
    // Prepare
    const clock = createSandboxClock(new Date('2026-01-01T00:00:00Z'));
    const operations = new ArmOperations(clock, 'ops', 1);
    const op = operations.start({
      namespace: 'Microsoft.Example',
      location: 'West Europe',
      subscriptionId: SUB,
      apiVersion: '2025-01-01',
      outcome: { result: { status: 200, body: { done: true } } },
    });

    // Act
    const running = operations.read('microsoft.example', 'operationResults', op.id);
    await clock.advance(5000);
    const finished = operations.read('Microsoft.Example', 'operationResults', op.id);
    const status = operations.read('Microsoft.Example', 'operationsStatus', op.id);
    const unknown = operations.read('Microsoft.Example', 'operationsStatus', 'nope');

    // Assess
    expect(op.statusUrl).toBe(
      `https://management.azure.com/subscriptions/${SUB}/providers/Microsoft.Example/locations/westeurope/operationsStatus/${op.id}?api-version=2025-01-01`,
    );
    expect(running).toEqual({ status: 202, headers: { location: op.resultUrl, 'retry-after': '0' } });
    expect(finished).toEqual({ status: 200, body: { done: true } });
    expect(status).toEqual({
      status: 200,
      body: {
        id: `/subscriptions/${SUB}/providers/Microsoft.Example/locations/westeurope/operationsStatus/${op.id}`,
        name: op.id,
        status: 'Succeeded',
        startTime: '2026-01-01T00:00:00.000Z',
        endTime: '2026-01-01T00:00:05.000Z',
      },
      headers: undefined,
    });
    expect(unknown.status).toBe(404);
  });

  it('reports a failed operation with its error on both resources', () => {
    // Prepare
    const clock = createSandboxClock(new Date('2026-01-01T00:00:00Z'));
    const operations = new ArmOperations(clock, 'ops', 0);
    const error = { code: 'Conflict', message: 'Another operation is in progress.' };
    const op = operations.start({
      namespace: 'Microsoft.Example',
      location: 'westeurope',
      subscriptionId: SUB,
      apiVersion: '2025-01-01',
      outcome: { error },
    });

    // Act
    const status = operations.read('Microsoft.Example', 'operationsStatus', op.id);
    const result = operations.read('Microsoft.Example', 'operationResults', op.id);

    // Assess
    expect(status.body).toMatchObject({ status: 'Failed', error });
    expect(result).toEqual({ status: 400, body: { error } });
  });
});
