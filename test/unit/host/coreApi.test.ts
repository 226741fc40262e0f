import { describe, expect, it } from 'vitest';
import { FunctionRegistry } from '../../../src/local/host/coreApi';
import type { FunctionMetadata } from '../../../src/local/host/types';

const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const handler = () => undefined;
const timerMetadata = (name: string): FunctionMetadata => ({
  name,
  bindings: { t: { type: 'timerTrigger', direction: 'in', schedule: '0 * * * * *' } },
});

describe('function registry (the worker side of registerFunction)', () => {
  it('registers a function with its trigger binding', () => {
    // Prepare
    const registry = new FunctionRegistry(quiet);
    // Act
    registry.registerFunction(timerMetadata('nightly'), handler);
    // Assess
    expect(registry.get('NIGHTLY')).toMatchObject({
      name: 'nightly',
      triggerName: 't',
      trigger: { type: 'timerTrigger' },
    });
  });

  it('rejects duplicate names (case-insensitively) and keeps the first registration', () => {
    // Prepare
    const registry = new FunctionRegistry(quiet);
    registry.registerFunction(timerMetadata('nightly'), handler);
    // Act / Assess
    expect(() => registry.registerFunction(timerMetadata('Nightly'), handler)).toThrow(
      /Duplicate function name "Nightly"/,
    );
    expect(registry.functions).toHaveLength(1);
  });

  it('rejects registrations without exactly one trigger, without a name or without a handler', () => {
    // Prepare
    const registry = new FunctionRegistry(quiet);
    // Act / Assess
    expect(() => registry.registerFunction({ name: 'x', bindings: {} }, handler)).toThrow(
      /exactly one trigger/,
    );
    expect(() => registry.registerFunction({ ...timerMetadata(''), name: ' ' }, handler)).toThrow(
      /non-empty "name"/,
    );
    expect(() => registry.registerFunction(timerMetadata('y'), undefined as never)).toThrow(
      /needs a handler/,
    );
    expect(registry.functions).toEqual([]);
  });

  it('closes registration and disposal once start-up is over, as the worker does', () => {
    // Prepare
    const registry = new FunctionRegistry(quiet);
    const disposable = registry.registerFunction(timerMetadata('a'), handler);
    registry.seal();
    // Act / Assess
    expect(() => registry.registerFunction(timerMetadata('b'), handler)).toThrow(
      /only be registered during app startup/,
    );
    expect(() => disposable.dispose()).toThrow(/only be disposed during app startup/);
    expect(registry.functions.map((f) => f.name)).toEqual(['a']);
  });

  it('disposes a function during start-up', () => {
    // Prepare
    const registry = new FunctionRegistry(quiet);
    const disposable = registry.registerFunction(timerMetadata('a'), handler);
    // Act
    disposable.dispose();
    // Assess
    expect(registry.functions).toEqual([]);
  });

  it('runs hooks in registration order and stops at the first that throws', async () => {
    // Prepare
    const registry = new FunctionRegistry(quiet);
    const calls: string[] = [];
    registry.registerHook('preInvocation', () => {
      calls.push('first');
    });
    registry.registerHook('preInvocation', () => {
      throw new Error('hook failed');
    });
    registry.registerHook('preInvocation', () => {
      calls.push('third');
    });
    // Act / Assess
    await expect(registry.executeHooks('preInvocation', {})).rejects.toThrow('hook failed');
    expect(calls).toEqual(['first']);
    expect(() => registry.registerHook('onSomething', () => {})).toThrow(/Unknown hook "onSomething"/);
  });

  it('redacts what the worker API log receives, like every other host log line', () => {
    // Prepare
    const lines: string[] = [];
    const registry = new FunctionRegistry({
      info: (m) => lines.push(`info ${m}`),
      warn: (m) => lines.push(`warn ${m}`),
      error: (m) => lines.push(`error ${m}`),
    });
    // Act
    registry.log(
      'warning',
      'Microsoft.Azure.Functions.Worker',
      'retrying https://x/q?sig=c2VjcmV0LXNpZw&sv=1',
    );
    registry.log('error', 'worker', 'Endpoint=sb://ns/;SharedAccessKey=c2VjcmV0LWtleQ==');
    // Assess
    expect(lines).toEqual([
      'warn [Microsoft.Azure.Functions.Worker] retrying https://x/q?sig=[REDACTED]&sv=1',
      'error [worker] Endpoint=sb://ns/;SharedAccessKey=[REDACTED]',
    ]);
  });
});
