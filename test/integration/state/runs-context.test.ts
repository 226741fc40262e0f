import { afterEach, describe, expect, it } from 'vitest';
import { clearRegisteredSecrets, registerSecret } from '../../../src/lib/core/redact';
import {
  RunEngine,
  type RunKindDefinition,
  type StepContext,
  type StepResult,
} from '../../../src/lib/runs/engine';
import { freshStores, TestClock } from './helpers';

const SECRET = 'sv=2024&sig=not-for-logs-Zx81';

async function drainAll(engine: RunEngine, stores: Awaited<ReturnType<typeof freshStores>>) {
  for (let round = 0; round < 20; round++) {
    const received = await stores.workQueue.receive({ maxMessages: 32 });
    if (received.length === 0) return;
    for (const item of received) {
      if (item.message)
        await engine.advanceRun(item.message.runId, { owner: 'w', ticket: item.message.ticket });
      await stores.workQueue.delete(item);
    }
  }
}

describe('run engine: what steps see and what is stored', () => {
  afterEach(() => clearRegisteredSecrets());

  it('gives each step the input, the dry-run flag and the outputs of earlier steps', async () => {
    // Prepare
    const clock = new TestClock();
    const stores = await freshStores(clock);
    const seen: Array<Pick<StepContext, 'step' | 'attempt' | 'dryRun' | 'input' | 'outputs'>> = [];
    const step = (name: string, result: StepResult) => ({
      name,
      run: async (_run: unknown, ctx: StepContext) => {
        seen.push({
          step: ctx.step,
          attempt: ctx.attempt,
          dryRun: ctx.dryRun,
          input: ctx.input,
          outputs: ctx.outputs,
        });
        return result;
      },
    });
    const kind: RunKindDefinition = {
      kind: 'ctx',
      steps: [
        step('plan', { status: 'done', output: { planned: 'v2' } }),
        step('check', { status: 'skip' }),
        step('apply', { status: 'done' }),
      ],
    };
    const engine = new RunEngine({ ...stores, queue: stores.workQueue, clock, kinds: [kind] });

    // Act
    await engine.startRun('ctx', { target: 't', input: { vault: 'kv1' }, dryRun: true, correlationId: 'c' });
    await drainAll(engine, stores);

    // Assess
    expect(seen).toEqual([
      { step: 'plan', attempt: 1, dryRun: true, input: { vault: 'kv1' }, outputs: {} },
      {
        step: 'check',
        attempt: 1,
        dryRun: true,
        input: { vault: 'kv1' },
        outputs: { plan: { planned: 'v2' } },
      },
      {
        step: 'apply',
        attempt: 1,
        dryRun: true,
        input: { vault: 'kv1' },
        outputs: { plan: { planned: 'v2' } },
      },
    ]);
  });

  it('keeps secret values out of stored errors, outputs, input and audit records', async () => {
    // Prepare
    const clock = new TestClock();
    const stores = await freshStores(clock);
    registerSecret(SECRET);
    const kind: RunKindDefinition = {
      kind: 'leaky',
      steps: [
        {
          name: 'one',
          run: async () => ({ status: 'done', output: { connectionString: 'x', note: `got ${SECRET}` } }),
        },
        {
          name: 'two',
          run: async () => {
            throw new TypeError(`cannot parse ${SECRET}`);
          },
        },
      ],
      retry: { maxAttempts: 1 },
    };
    const engine = new RunEngine({ ...stores, queue: stores.workQueue, clock, kinds: [kind] });

    // Act
    const { run } = await engine.startRun('leaky', {
      target: 't',
      input: { password: 'p@ss-word-1' },
      correlationId: 'c',
    });
    await drainAll(engine, stores);
    const stored = await engine.getRun(run.id);
    const audit = await stores.audit.query({ since: new Date('2026-11-27T00:00:00Z') });

    // Assess
    const everything = JSON.stringify({ stored, audit });
    expect(stored?.state).toBe('failed');
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain('p@ss-word-1');
    // A TypeError is a programming error: not retried, the run fails at once.
    expect(stored?.steps[1]?.error).toEqual({ code: 'Unexpected', message: 'cannot parse [REDACTED]' });
  });

  it('stores an oversized step output as a truncation marker', async () => {
    // Prepare
    const clock = new TestClock();
    const stores = await freshStores(clock);
    const kind: RunKindDefinition = {
      kind: 'big',
      steps: [{ name: 'one', run: async () => ({ status: 'done', output: { blob: 'x'.repeat(50_000) } }) }],
    };
    const engine = new RunEngine({ ...stores, queue: stores.workQueue, clock, kinds: [kind] });

    // Act
    const { run } = await engine.startRun('big', { target: 't', correlationId: 'c' });
    await drainAll(engine, stores);
    const stored = await engine.getRun(run.id);

    // Assess
    expect(stored?.state).toBe('succeeded');
    expect(stored?.steps[0]?.output).toEqual({
      _truncated: true,
      originalLength: JSON.stringify({ blob: 'x'.repeat(50_000) }).length,
    });
  });
});
