import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../../src/lib/core/errors';
import { parseWorkMessage } from '../../../src/lib/runs/messages';
import {
  applyError,
  applyResult,
  approveTransition,
  beginStep,
  cancelTransition,
  checkAdvance,
  isStalled,
  migrateRun,
  parkForApproval,
  type RetryPolicy,
  rejectTransition,
  resumeTransition,
  retryDelayMs,
} from '../../../src/lib/runs/rules';
import type { Run } from '../../../src/lib/runs/types';

const T0 = new Date('2026-11-27T10:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const POLICY: RetryPolicy = { maxAttempts: 3, baseDelayMs: 1_000, maxDelayMs: 5_000 };

function run(overrides: Partial<Run> = {}): Run {
  return {
    id: 'r1',
    kind: 'demo',
    kindVersion: 1,
    target: 't',
    state: 'pending',
    steps: [
      { name: 'a', status: 'pending', attempts: 0 },
      { name: 'b', status: 'pending', attempts: 0 },
    ],
    currentStep: 0,
    input: {},
    dryRun: false,
    correlationId: 'c',
    actor: 'system:test',
    createdOn: T0,
    updatedOn: T0,
    dueOn: T0,
    ticket: 3,
    resumes: 0,
    outbox: [],
    etag: 'e',
    ...overrides,
  };
}

describe('checkAdvance', () => {
  it('accepts a due message with the current ticket', () => {
    expect(checkAdvance(run(), { ticket: 3 }, 'w', T0)).toBe('ok');
    expect(checkAdvance(run(), {}, 'w', T0)).toBe('ok');
  });

  it('drops a message of another ticket', () => {
    expect(checkAdvance(run(), { ticket: 2 }, 'w', T0)).toBe('stale');
  });

  it('reports a run that is over', () => {
    expect(checkAdvance(run({ state: 'succeeded' }), { ticket: 3 }, 'w', T0)).toBe('terminal');
    expect(checkAdvance(run({ state: 'cancelled' }), { ticket: 3 }, 'w', T0)).toBe('terminal');
    expect(checkAdvance(run({ currentStep: 2 }), { ticket: 3 }, 'w', T0)).toBe('terminal');
  });

  it('is busy while another owner holds a live lease, not once it expired or for the holder', () => {
    const leased = run({ lease: { owner: 'other', expiresOn: at(1000) } });
    expect(checkAdvance(leased, { ticket: 3 }, 'w', T0)).toBe('busy');
    expect(checkAdvance(leased, { ticket: 3 }, 'other', T0)).toBe('ok');
    expect(checkAdvance(leased, { ticket: 3 }, 'w', at(1000))).toBe('ok');
  });

  it('is not due before dueOn, beyond the one-second tolerance', () => {
    expect(checkAdvance(run({ dueOn: at(5000) }), { ticket: 3 }, 'w', T0)).toBe('notDue');
    expect(checkAdvance(run({ dueOn: at(1000) }), { ticket: 3 }, 'w', T0)).toBe('ok');
  });
});

describe('beginStep', () => {
  it('leases the run, marks the step running and counts an attempt', () => {
    const begun = beginStep(run(), 'w', T0, 60_000);
    expect(begun.state).toBe('running');
    expect(begun.lease).toEqual({ owner: 'w', expiresOn: at(60_000) });
    expect(begun.steps[0]).toEqual({ name: 'a', status: 'running', attempts: 1, startedOn: T0 });
  });

  it('keeps the first start time on a later attempt', () => {
    const again = beginStep(
      run({ steps: [{ name: 'a', status: 'pending', attempts: 1, startedOn: T0 }] }),
      'w',
      at(5000),
      60_000,
    );
    expect(again.steps[0]).toMatchObject({ attempts: 2, startedOn: T0 });
  });
});

describe('applyResult', () => {
  const begun = () => beginStep(run(), 'w', T0, 60_000);

  it('done moves to the next step, due now, with a new ticket and no lease', () => {
    const t = applyResult(begun(), { status: 'done', output: { x: 1 } }, at(10));
    expect(t.next).toEqual({ delayMs: 0 });
    expect(t.run).toMatchObject({
      state: 'pending',
      currentStep: 1,
      ticket: 4,
      dueOn: at(10),
      lease: undefined,
    });
    expect(t.run.steps[0]).toMatchObject({ status: 'done', output: { x: 1 }, endedOn: at(10) });
  });

  it('done on the last step succeeds the run and sends nothing', () => {
    const last = beginStep(run({ currentStep: 1 }), 'w', T0, 60_000);
    const t = applyResult(last, { status: 'done' }, at(10));
    expect(t.next).toBeUndefined();
    expect(t.run).toMatchObject({ state: 'succeeded', currentStep: 2, dueOn: undefined });
  });

  it('skip marks the step skipped and moves on', () => {
    const t = applyResult(begun(), { status: 'skip' }, at(10));
    expect(t.run.steps[0]?.status).toBe('skipped');
    expect(t.run.currentStep).toBe(1);
  });

  it('wait keeps the step, does not use up an attempt, and delays the next message', () => {
    const t = applyResult(begun(), { status: 'wait', delayMs: 30_000 }, at(10));
    expect(t.next).toEqual({ delayMs: 30_000 });
    expect(t.run).toMatchObject({ state: 'waiting', currentStep: 0, dueOn: at(30_010) });
    expect(t.run.steps[0]).toMatchObject({ status: 'running', attempts: 0 });
  });

  it('fail fails the step and the run', () => {
    const error = { code: 'Nope', message: 'no' };
    const t = applyResult(begun(), { status: 'fail', error }, at(10));
    expect(t.next).toBeUndefined();
    expect(t.run).toMatchObject({ state: 'failed', error });
    expect(t.run.steps[0]).toMatchObject({ status: 'failed', error });
  });
});

describe('applyError', () => {
  const error = { code: 'TransientFailure', message: 'throttled' };

  it('retries a retryable error after an exponential backoff while attempts remain', () => {
    const second = beginStep(run({ steps: [{ name: 'a', status: 'pending', attempts: 1 }] }), 'w', T0, 1);
    const t = applyError(second, error, true, POLICY, T0);
    expect(t.next).toEqual({ delayMs: 2_000 });
    expect(t.run).toMatchObject({ state: 'waiting', dueOn: at(2_000) });
    expect(t.run.steps[0]).toMatchObject({ status: 'pending', attempts: 2, error });
  });

  it('fails the run on the last attempt', () => {
    const last = beginStep(run({ steps: [{ name: 'a', status: 'pending', attempts: 2 }] }), 'w', T0, 1);
    const t = applyError(last, error, true, POLICY, T0);
    expect(t.next).toBeUndefined();
    expect(t.run.state).toBe('failed');
    expect(t.run.error?.message).toBe('throttled (gave up after 3 attempts)');
  });

  it('fails the run at once on a non-retryable error', () => {
    const t = applyError(
      beginStep(run(), 'w', T0, 1),
      { code: 'ValidationFailed', message: 'bad' },
      false,
      POLICY,
      T0,
    );
    expect(t.run.state).toBe('failed');
    expect(t.run.steps[0]?.attempts).toBe(1);
  });
});

describe('retryDelayMs', () => {
  it('doubles from the base and stops at the cap', () => {
    expect([1, 2, 3, 4, 50].map((a) => retryDelayMs(a, POLICY))).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
  });
});

describe('isStalled', () => {
  it('is stalled when the lease expired', () => {
    const leased = run({ state: 'running', lease: { owner: 'w', expiresOn: at(1000) } });
    expect(isStalled(leased, at(999), 60_000)).toBe(false);
    expect(isStalled(leased, at(1000), 60_000)).toBe(true);
  });

  it('is stalled when its next message is overdue by more than the threshold', () => {
    expect(isStalled(run(), at(60_000), 60_000)).toBe(false);
    expect(isStalled(run(), at(60_001), 60_000)).toBe(true);
    expect(isStalled(run({ state: 'waiting', dueOn: at(600_000) }), at(600_000), 60_000)).toBe(false);
  });

  it('is never stalled once over', () => {
    expect(isStalled(run({ state: 'failed' }), at(10_000_000), 60_000)).toBe(false);
  });
});

describe('resumeTransition', () => {
  it('drops the lease, keeps the ticket (a queued message stays valid), counts the resume, due now', () => {
    const crashed = beginStep(run(), 'w', T0, 1000);
    const t = resumeTransition(crashed, POLICY, at(2000));
    expect(t.next).toEqual({ delayMs: 0 });
    expect(t.run).toMatchObject({
      state: 'pending',
      lease: undefined,
      ticket: 3,
      resumes: 1,
      resumedOn: at(2000),
    });
  });

  it('fails the run when the step crashed its worker on its last attempt', () => {
    const crashed = beginStep(run({ steps: [{ name: 'a', status: 'pending', attempts: 2 }] }), 'w', T0, 1000);
    const t = resumeTransition(crashed, POLICY, at(2000));
    expect(t.next).toBeUndefined();
    expect(t.run).toMatchObject({ state: 'failed', error: { code: 'StepAbandoned' } });
  });
});

describe('isStalled after resumes', () => {
  it('waits twice as long after each resume that made no progress', () => {
    const resumed = run({ resumes: 2, resumedOn: at(0) });
    expect(isStalled(resumed, at(240_000), 60_000)).toBe(false);
    expect(isStalled(resumed, at(240_001), 60_000)).toBe(true);
  });

  it('starts over once a step is recorded', () => {
    const t = applyResult(
      beginStep(run({ resumes: 4, resumedOn: T0 }), 'w', T0, 60_000),
      { status: 'done' },
      at(10),
    );
    expect(t.run).toMatchObject({ resumes: 0, resumedOn: undefined });
  });
});

describe('deadlines', () => {
  it('counts every wait and never lets a wait end after the deadline', () => {
    const begun = beginStep(run({ deadline: at(10_000) }), 'w', T0, 60_000);
    const t = applyResult(begun, { status: 'wait', delayMs: 60_000 }, at(10));
    expect(t.run.steps[0]).toMatchObject({ waits: 1, attempts: 0 });
    expect(t.run.dueOn).toEqual(at(10_000));
    expect(t.next).toEqual({ delayMs: 9_990 });
  });
});

describe('cancelTransition', () => {
  it('cancels with a reason and a new ticket so pending messages go stale; no step is left running', () => {
    const waiting = run({
      state: 'waiting',
      steps: [
        { name: 'a', status: 'done', attempts: 1, startedOn: T0 },
        { name: 'b', status: 'running', attempts: 0, waits: 2, startedOn: T0 },
        { name: 'c', status: 'pending', attempts: 0 },
      ],
      currentStep: 1,
    });
    const t = cancelTransition(waiting, 'stop', at(5));
    expect(t.next).toBeUndefined();
    expect(t.run).toMatchObject({
      state: 'cancelled',
      ticket: 4,
      error: { code: 'Cancelled', message: 'stop' },
    });
    expect(t.run.steps.map((s) => s.status)).toEqual(['done', 'cancelled', 'cancelled']);
  });

  it('appends the compensations of the started steps, newest first, and runs them next', () => {
    const waiting = run({
      state: 'waiting',
      steps: [
        { name: 'a', status: 'done', attempts: 1, startedOn: T0 },
        { name: 'b', status: 'running', attempts: 0, startedOn: T0 },
        { name: 'c', status: 'pending', attempts: 0 },
      ],
      currentStep: 1,
    });
    const t = cancelTransition(waiting, 'stop', at(5), () => true);
    expect(t.next).toEqual({ delayMs: 0 });
    expect(t.run).toMatchObject({ state: 'cancelling', currentStep: 3 });
    expect(t.run.steps.slice(3)).toEqual([
      { name: 'undo-b', compensates: 'b', status: 'pending', attempts: 0 },
      { name: 'undo-a', compensates: 'a', status: 'pending', attempts: 0 },
    ]);
    const last = applyResult(
      beginStep({ ...t.run, currentStep: 4 }, 'w', at(6), 1000),
      { status: 'done' },
      at(7),
    );
    expect(last.run.state).toBe('cancelled');
  });
});

describe('approvals', () => {
  it('parks until the approval expires, then runs the step once approved', () => {
    const parked = parkForApproval(run(), T0, 60_000);
    expect(parked.run).toMatchObject({ state: 'awaiting-approval', ticket: 4, dueOn: at(60_000) });
    expect(parked.run.steps[0]?.approval).toEqual({ requestedOn: T0, expiresOn: at(60_000) });
    expect(checkAdvance(parked.run, { ticket: 4 }, 'w', at(1000))).toBe('notDue');
    const approved = approveTransition(parked.run, { actor: 'user:ops', comment: 'go' }, at(2000));
    expect(approved.run).toMatchObject({ state: 'pending', ticket: 5, dueOn: at(2000) });
    expect(approved.run.steps[0]?.approval).toMatchObject({ decision: 'approved', decidedBy: 'user:ops' });
  });

  it('cancels the run on a rejection', () => {
    const parked = parkForApproval(run(), T0, 60_000);
    const rejected = rejectTransition(parked.run, { actor: 'user:ops' }, at(2000), () => false);
    expect(rejected.run).toMatchObject({ state: 'cancelled', error: { message: 'rejected by user:ops' } });
    expect(rejected.run.steps[0]?.approval).toMatchObject({ decision: 'rejected' });
  });
});

describe('migrateRun', () => {
  it('keeps finished steps, resumes at the mapped step and skips new steps before it', () => {
    const old = run({
      steps: [
        { name: 'a', status: 'done', attempts: 1, output: { x: 1 } },
        { name: 'b', status: 'pending', attempts: 0 },
      ],
      currentStep: 1,
    });
    const migrated = migrateRun(old, ['a', 'a2', 'b2', 'c'], 2, 'b2', at(1));
    expect(migrated).toMatchObject({ kindVersion: 2, currentStep: 2, ticket: 3 });
    expect(migrated.steps.map((s) => [s.name, s.status])).toEqual([
      ['a', 'done'],
      ['a2', 'skipped'],
      ['b2', 'pending'],
      ['c', 'pending'],
    ]);
    expect(migrated.steps[0]?.output).toEqual({ x: 1 });
  });
});

describe('parseWorkMessage', () => {
  it('accepts an object or its JSON text', () => {
    expect(parseWorkMessage({ runId: 'r', ticket: 2, step: 'a' })).toEqual({
      runId: 'r',
      ticket: 2,
      step: 'a',
    });
    expect(parseWorkMessage('{"runId":"r"}')).toEqual({ runId: 'r' });
  });

  it('rejects anything else with the problems listed', () => {
    expect(() => parseWorkMessage('not json')).toThrow(ValidationError);
    expect(() => parseWorkMessage([])).toThrow(ValidationError);
    try {
      parseWorkMessage({ runId: '', ticket: -1 });
      expect.unreachable();
    } catch (error) {
      expect((error as ValidationError).problems).toEqual([
        'runId must be a non-empty string',
        'ticket must be a non-negative integer',
      ]);
    }
  });
});
