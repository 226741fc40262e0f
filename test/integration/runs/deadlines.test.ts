import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError } from '../../../src/lib/core/errors';
import type { RunKindDefinition } from '../../../src/lib/runs';
import { auditOf, QueueTrigger, setupEngine, TestClock } from './support';

const HOUR = 3_600_000;

/** Advances the test clock and plays the queue trigger and the resume timer, as many times as asked. */
async function live(
  setup: Awaited<ReturnType<typeof setupEngine>>,
  clock: TestClock,
  stepMs: number,
  times: number,
) {
  const trigger = new QueueTrigger(setup.stores, () => setup.engine);
  for (let i = 0; i < times; i++) {
    await trigger.drain();
    clock.advance(stepMs);
    await setup.engine.resumeStalledRuns();
    // A wait's message is hidden for the wait in wall time: play its delivery by hand once due.
    for (const run of await setup.stores.runs.list({})) {
      if (run.state === 'waiting' || run.state === 'awaiting-approval') {
        await setup.engine.advanceRun(run.id, { owner: `tick-${i}`, ticket: run.ticket });
      }
    }
  }
}

describe('deadlines, waits and approvals (issue 6, §6)', () => {
  it('ends a run whose step keeps waiting at its deadline, and notifies its channels', async () => {
    // Prepare: a step that never stops polling
    const clock = new TestClock();
    const kind: RunKindDefinition = {
      kind: 'poll',
      deadlineMs: 6 * HOUR,
      steps: [{ name: 'waitForDrain', run: async () => ({ status: 'wait', delayMs: HOUR }) }],
    };
    const setup = await setupEngine([kind], { stallThresholdMs: 10 * 60_000 }, clock);
    const { run } = await setup.engine.startRun('poll', { target: 'queues/orders', correlationId: 'c' });

    // Act: two days of clock time
    await live(setup, clock, HOUR, 48);
    const final = await setup.engine.getRun(run.id);
    const audit = await auditOf(setup.stores, run.id);

    // Assess
    expect(final).toMatchObject({ state: 'failed', error: { code: 'DeadlineExceeded' } });
    expect(final?.steps[0]).toMatchObject({ status: 'failed', waits: 6 });
    expect(final?.updatedOn).toEqual(new Date(run.createdOn.getTime() + 6 * HOUR));
    expect(audit.map((r) => r.action)).toContain('run.poll.deadline');
    expect(setup.channel.sent.map((n) => [n.type, n.subject])).toEqual([
      ['com.stampkeeper.run.failed', 'queues/orders'],
    ]);
  });

  it('notifies the channels of a run whose step fails', async () => {
    // Prepare
    const setup = await setupEngine([
      {
        kind: 'k',
        steps: [
          {
            name: 'one',
            run: async () => ({ status: 'fail', error: { code: 'Refused', message: 'no quota' } }),
          },
        ],
      },
    ]);
    const { run } = await setup.engine.startRun('k', { target: 'subscriptions/s1', correlationId: 'c' });

    // Act
    await new QueueTrigger(setup.stores, () => setup.engine).drain();

    // Assess
    expect(setup.channel.sent).toEqual([
      expect.objectContaining({
        type: 'com.stampkeeper.run.failed',
        severity: 'critical',
        facts: expect.objectContaining({ Run: run.id, Step: 'one', Error: 'Refused: no quota' }),
      }),
    ]);
  });

  describe('approvals', () => {
    function approvedKind(executed: string[], onExpiry?: 'fail' | 'cancel'): RunKindDefinition {
      return {
        kind: 'remediate',
        steps: [
          {
            name: 'plan',
            run: async () => {
              executed.push('plan');
              return { status: 'done' };
            },
          },
          {
            name: 'scaleUp',
            approval: { expiresAfterMs: 2 * HOUR, ...(onExpiry ? { onExpiry } : {}) },
            run: async (_run, ctx) => {
              executed.push(`scaleUp approved by ${ctx.approval?.decidedBy}`);
              return { status: 'done' };
            },
          },
        ],
      };
    }

    it('parks the run as awaiting-approval and notifies; an approval runs the step and records the approver', async () => {
      // Prepare
      const executed: string[] = [];
      const clock = new TestClock();
      const setup = await setupEngine([approvedKind(executed)], {}, clock);
      const { run } = await setup.engine.startRun('remediate', { target: 'sites/web-1', correlationId: 'c' });
      const trigger = new QueueTrigger(setup.stores, () => setup.engine);

      // Act
      await trigger.drain();
      const parked = await setup.engine.getRun(run.id);
      clock.advance(60_000);
      const approved = await setup.engine.approveRun(run.id, {
        actor: 'user:lead@contoso.com',
        comment: 'go',
      });
      await trigger.drain();
      const final = await setup.engine.getRun(run.id);
      const again = await setup.engine
        .approveRun(run.id, { actor: 'user:lead@contoso.com' })
        .catch((e: unknown) => e);
      const audit = await auditOf(setup.stores, run.id);

      // Assess
      expect(parked).toMatchObject({ state: 'awaiting-approval', currentStep: 1 });
      expect(parked?.steps[1]?.approval?.expiresOn).toEqual(new Date(parked!.updatedOn.getTime() + 2 * HOUR));
      expect(setup.channel.sent.map((n) => n.type)).toEqual(['com.stampkeeper.run.awaitingApproval']);
      expect(approved.state).toBe('pending');
      expect(final?.state).toBe('succeeded');
      expect(final?.steps[1]?.approval).toMatchObject({
        decision: 'approved',
        decidedBy: 'user:lead@contoso.com',
        comment: 'go',
      });
      expect(executed).toEqual(['plan', 'scaleUp approved by user:lead@contoso.com']);
      expect(again).toBeInstanceOf(ConflictError);
      expect(audit.find((r) => r.action === 'run.remediate.approve')).toMatchObject({
        actor: 'user:lead@contoso.com',
        outcome: 'succeeded',
      });
    });

    it('asks for an approval only where the run says so, and notifies the channels the run names', async () => {
      // Prepare: approval and channels decided per run (a rotation: by its secret's policy)
      const executed: string[] = [];
      const kind: RunKindDefinition = {
        kind: 'rotate',
        channels: (run) => (run.input.quiet ? [] : undefined),
        steps: [
          {
            name: 'regenerate',
            approval: { expiresAfterMs: HOUR, when: (run) => run.input.approval === true },
            run: async (run) => {
              executed.push(run.target);
              return { status: 'done' };
            },
          },
        ],
      };
      const setup = await setupEngine([kind]);
      const trigger = new QueueTrigger(setup.stores, () => setup.engine);

      // Act
      const free = await setup.engine.startRun('rotate', {
        target: 'secrets/free',
        correlationId: 'c',
        input: {},
      });
      const gated = await setup.engine.startRun('rotate', {
        target: 'secrets/gated',
        correlationId: 'c',
        input: { approval: true },
      });
      const quiet = await setup.engine.startRun('rotate', {
        target: 'secrets/quiet',
        correlationId: 'c',
        input: { approval: true, quiet: true },
      });
      await trigger.drain();

      // Assess
      expect((await setup.engine.getRun(free.run.id))?.state).toBe('succeeded');
      expect((await setup.engine.getRun(gated.run.id))?.state).toBe('awaiting-approval');
      expect((await setup.engine.getRun(quiet.run.id))?.state).toBe('awaiting-approval');
      expect(executed).toEqual(['secrets/free']);
      expect(setup.channel.sent.map((n) => n.subject)).toEqual(['secrets/gated']);
    });

    it('cancels the run on a rejection, audited with the approver', async () => {
      // Prepare
      const executed: string[] = [];
      const setup = await setupEngine([approvedKind(executed)]);
      const { run } = await setup.engine.startRun('remediate', { target: 'sites/web-1', correlationId: 'c' });
      await new QueueTrigger(setup.stores, () => setup.engine).drain();

      // Act
      const rejected = await setup.engine.rejectRun(run.id, {
        actor: 'user:lead@contoso.com',
        comment: 'not now',
      });
      const missing = await setup.engine
        .rejectRun('no-such-run', { actor: 'user:x' })
        .catch((e: unknown) => e);
      const audit = await auditOf(setup.stores, run.id);

      // Assess
      expect(rejected).toMatchObject({
        state: 'cancelled',
        error: { message: 'rejected by user:lead@contoso.com: not now' },
      });
      expect(rejected.steps.map((s) => s.status)).toEqual(['done', 'cancelled']);
      expect(executed).toEqual(['plan']);
      expect(missing).toBeInstanceOf(NotFoundError);
      expect(audit.find((r) => r.action === 'run.remediate.reject')).toMatchObject({
        actor: 'user:lead@contoso.com',
        outcome: 'rejected',
      });
    });

    it('fails the run when the approval expires, with a notification; a late approval is refused', async () => {
      // Prepare
      const executed: string[] = [];
      const clock = new TestClock();
      const setup = await setupEngine([approvedKind(executed)], {}, clock);
      const { run } = await setup.engine.startRun('remediate', { target: 'sites/web-1', correlationId: 'c' });

      // Act
      await live(setup, clock, HOUR, 4);
      const final = await setup.engine.getRun(run.id);
      const late = await setup.engine.approveRun(run.id, { actor: 'user:lead' }).catch((e: unknown) => e);

      // Assess
      expect(final).toMatchObject({ state: 'failed', error: { code: 'ApprovalExpired' } });
      expect(executed).toEqual(['plan']);
      expect(late).toBeInstanceOf(ConflictError);
      expect(setup.channel.sent.map((n) => n.type)).toEqual([
        'com.stampkeeper.run.awaitingApproval',
        'com.stampkeeper.run.failed',
      ]);
    });
  });
});
