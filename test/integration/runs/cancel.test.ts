import { describe, expect, it } from 'vitest';
import type { RunKindDefinition, StepContext } from '../../../src/lib/runs';
import { auditOf, setupEngine, TestClock } from './support';

/** A gate a step waits on, opened by the test. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

/** Resolves once `check` holds (polled), or fails the test after `ms`. */
async function until(check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A rotation-like kind: `regenerate` creates a key (the effect), `publish` follows. Regenerating is
 * undone by `revokeKey` when the run is cancelled after it started.
 */
function rotationKind(regenerate: (ctx: StepContext) => Promise<void>, effects: string[]): RunKindDefinition {
  return {
    kind: 'rotate',
    steps: [
      {
        name: 'regenerate',
        run: async (_run, ctx) => {
          await regenerate(ctx);
          effects.push('key regenerated');
          return { status: 'done', output: { keyVersion: 'v2' } };
        },
        compensate: async (_run, ctx) => {
          effects.push(
            `key ${String((ctx.outputs.regenerate as { keyVersion?: string } | undefined)?.keyVersion ?? 'unknown')} revoked`,
          );
          return { status: 'done' };
        },
      },
      {
        name: 'publish',
        run: async () => {
          effects.push('published');
          return { status: 'done' };
        },
      },
    ],
  };
}

describe('cancel is safe (issue 6, §2)', () => {
  it('lets a step in flight finish, records its result, then cancels and compensates', async () => {
    // Prepare: the step is in flight (lease held) when the cancel arrives; it does not watch its signal
    const effects: string[] = [];
    const g = gate();
    let inFlight = false;
    const clock = new TestClock();
    const { stores, engine } = await setupEngine(
      [
        rotationKind(async () => {
          inFlight = true;
          await g.opened;
        }, effects),
      ],
      { cancelPollMs: 20 },
      clock,
    );
    const { run } = await engine.startRun('rotate', { target: 'vaults/kv/secrets/db', correlationId: 'c1' });
    const [message] = await stores.workQueue.receive();
    await stores.workQueue.delete(message!);
    const advancing = engine.advanceRun(run.id, { owner: 'msg:1:0', ticket: message?.message?.ticket });
    await until(() => inFlight);

    // Act (the clock moves a second between changes, so the audit trail's order is the order of events)
    clock.advance(1_000);
    const requested = await engine.cancelRun(run.id, {
      reason: 'wrong secret',
      actor: 'user:ops@contoso.com',
    });
    clock.advance(1_000);
    g.open();
    const outcome = await advancing;
    for (let i = 0; i < 5; i++) {
      clock.advance(1_000);
      const [next] = await stores.workQueue.receive();
      if (!next?.message) break;
      await engine.advanceRun(run.id, { owner: `msg:${next.messageId}`, ticket: next.message.ticket });
      await stores.workQueue.delete(next);
    }
    const final = await engine.getRun(run.id);
    const audit = await auditOf(stores, run.id);

    // Assess
    expect(requested).toMatchObject({ state: 'running', cancelRequest: { actor: 'user:ops@contoso.com' } });
    expect(outcome).toMatchObject({ status: 'advanced', step: 'regenerate' });
    expect(final?.state).toBe('cancelled');
    expect(final?.steps.map((s) => [s.name, s.status])).toEqual([
      ['regenerate', 'done'],
      ['publish', 'cancelled'],
      ['undo-regenerate', 'done'],
    ]);
    expect(final?.steps[0]?.output).toEqual({ keyVersion: 'v2' });
    expect(effects).toEqual(['key regenerated', 'key v2 revoked']);
    const actions = audit.map((r) => `${r.action}:${r.outcome}`);
    expect(actions).toEqual([
      'run.rotate.start:planned',
      'run.rotate.cancel-request:planned',
      'run.rotate.regenerate:succeeded',
      'run.rotate.cancel:succeeded',
      'run.rotate.undo-regenerate:succeeded',
    ]);
    const cancel = audit.find((r) => r.action === 'run.rotate.cancel');
    expect(cancel).toMatchObject({
      actor: 'user:ops@contoso.com',
      reason: 'wrong secret',
      before: { done: ['regenerate'], inFlight: 'regenerate' },
      after: { state: 'cancelling', compensations: ['undo-regenerate'] },
    });
  });

  it('aborts a step that watches its signal, records it, and never leaves a step running', async () => {
    // Prepare
    const effects: string[] = [];
    let inFlight = false;
    const { stores, engine } = await setupEngine(
      [
        rotationKind(async (ctx) => {
          inFlight = true;
          await new Promise((_resolve, reject) => {
            ctx.abortSignal.addEventListener('abort', () => reject(ctx.abortSignal.reason), { once: true });
          });
        }, effects),
      ],
      { cancelPollMs: 20 },
    );
    const { run } = await engine.startRun('rotate', { target: 'vaults/kv/secrets/db', correlationId: 'c1' });
    const [message] = await stores.workQueue.receive();
    await stores.workQueue.delete(message!);
    const advancing = engine.advanceRun(run.id, { owner: 'msg:1:0', ticket: message?.message?.ticket });
    await until(() => inFlight);

    // Act
    await engine.cancelRun(run.id, { reason: 'stop', actor: 'user:ops' });
    const outcome = await advancing;
    const [next] = await stores.workQueue.receive();
    if (next?.message) await engine.advanceRun(run.id, { owner: 'msg:2', ticket: next.message.ticket });
    const final = await engine.getRun(run.id);
    const audit = await auditOf(stores, run.id);

    // Assess: the aborted step may have acted half way: it is recorded, and its compensation ran.
    expect(outcome).toMatchObject({ status: 'advanced', step: 'regenerate' });
    expect(final?.state).toBe('cancelled');
    expect(final?.steps.some((s) => s.status === 'running')).toBe(false);
    expect(final?.steps.map((s) => [s.name, s.status])).toEqual([
      ['regenerate', 'cancelled'],
      ['publish', 'cancelled'],
      ['undo-regenerate', 'done'],
    ]);
    expect(effects).toEqual(['key unknown revoked']);
    expect(audit.map((r) => `${r.action}:${r.outcome}`)).toContain('run.rotate.regenerate:failed');
  });

  it('cancels a waiting run at once: its waiting step is cancelled, not left running', async () => {
    // Prepare
    const { stores, engine } = await setupEngine([
      {
        kind: 'poll',
        steps: [{ name: 'wait', run: async () => ({ status: 'wait', delayMs: 60_000 }) }],
      },
    ]);
    const { run } = await engine.startRun('poll', { target: 't', correlationId: 'c' });
    const [message] = await stores.workQueue.receive();
    await engine.advanceRun(run.id, { owner: 'm', ticket: message?.message?.ticket });

    // Act
    const cancelled = await engine.cancelRun(run.id, { reason: 'no longer needed', actor: 'user:ops' });

    // Assess
    expect(cancelled?.state).toBe('cancelled');
    expect(cancelled?.steps[0]?.status).toBe('cancelled');
  });
});
