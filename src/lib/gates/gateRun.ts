/**
 * The waiting mode of a gate, as a run of the step machine (`gate`): one step that evaluates the gate,
 * and waits the gate's interval (a queue delay, not a process holding a request open) until it passes
 * or its time is up. A pipeline starts it with `POST /api/gates/{name}` and `wait`, then reads
 * `GET /api/gates/evaluations/{id}` until it is over. One waiting evaluation per gate and target at a
 * time: a second request while one is under way gets the same run. Every evaluation is audited.
 */
import { findGate, type Policy } from '../config/policy';
import { ValidationError } from '../core/errors';
import { stableHash } from '../core/ids';
import { runOnce } from '../core/once';
import { sendToChannelsOnce } from '../notify/sendOnce';
import type { Notification, Notifier } from '../ports/notifier';
import type { IdempotencyStore } from '../ports/state';
import type { RunEngine, RunKindDefinition } from '../runs';
import type { JsonObject, Run } from '../runs/types';
import { compactEvaluation, evaluateGate, type GateDeps, queryText } from './evaluate';

export const GATE_KIND = 'gate';
/** The longest a waiting evaluation may run (the policy caps `wait.maxMinutes` at 24 hours), with room. */
const DEADLINE_MS = 25 * 3_600_000;

export interface GateRunInput extends JsonObject {
  gate: string;
  target: string;
  timeoutMinutes: number;
  intervalSeconds: number;
  /** When the waiting started (ISO): the timeout counts from it. */
  startedAt: string;
}

export interface GateRunDeps extends GateDeps {
  notifier: Notifier;
  idempotency: IdempotencyStore;
  environment: string;
  idempotencyTtlMs: number;
  claimLeaseMs: number;
}

/** The run target of a gate and one of its targets: one waiting evaluation each at a time. */
export function gateRunTarget(gate: string, target: string): string {
  return `gates/${gate}/${target}`;
}

/** The `gate` run kind: evaluate, wait, evaluate... until a pass or the timeout; then notify a failure. */
export function gateKind(deps: GateRunDeps): RunKindDefinition {
  return {
    kind: GATE_KIND,
    version: 1,
    target: { exclusive: true },
    deadlineMs: DEADLINE_MS,
    retry: { maxAttempts: 5, baseDelayMs: 5_000, maxDelayMs: 60_000 },
    // A run that fails (not a gate that fails: that is an answer) tells the gate's channels, else the defaults.
    channels: (run) => {
      const gate = findGate(deps.policy, (run.input as GateRunInput).gate);
      return gate && gate.notify.length > 0 ? gate.notify : undefined;
    },
    steps: [
      {
        name: 'evaluate',
        run: async (run, ctx) => {
          const input = run.input as GateRunInput;
          const gate = findGate(deps.policy, input.gate);
          const target = gate?.targets.find((t) => t.name === input.target);
          if (!gate || !target) {
            return {
              status: 'fail',
              error: {
                code: 'GateRemoved',
                message: `the policy no longer defines gate ${input.gate} for target ${input.target}`,
              },
            };
          }
          const waits = run.steps[run.currentStep]?.waits ?? 0;
          const evaluation = await evaluateGate(gate, target, deps, {
            actor: run.actor,
            correlationId: run.correlationId,
            sequence: `${run.id}:${waits}:${ctx.attempt}`,
            runId: run.id,
            abortSignal: ctx.abortSignal,
          });
          const evaluations = waits + 1;
          const last = compactEvaluation(evaluation);
          if (evaluation.verdict === 'pass')
            return { status: 'done', output: { verdict: 'pass', evaluations, last } };
          const endsAt = Date.parse(input.startedAt) + input.timeoutMinutes * 60_000;
          if (ctx.now.getTime() + input.intervalSeconds * 1000 > endsAt) {
            await notifyFailure(run, gate.notify, evaluation.reason, deps, ctx.abortSignal);
            return {
              status: 'done',
              output: {
                verdict: 'fail',
                evaluations,
                reason: `timed out after ${input.timeoutMinutes} minute(s) without a pass`,
                last,
              },
            };
          }
          return {
            status: 'wait',
            delayMs: input.intervalSeconds * 1000,
            output: { verdict: 'pending', evaluations, last },
          };
        },
      },
    ],
  };
}

async function notifyFailure(
  run: Readonly<Run>,
  channels: string[],
  reason: string,
  deps: GateRunDeps,
  abortSignal: AbortSignal,
): Promise<void> {
  if (channels.length === 0) return;
  const input = run.input as GateRunInput;
  const notification: Notification = {
    id: stableHash('gate-failed', run.id),
    type: 'com.stampkeeper.gate.failed',
    subject: run.target,
    severity: 'warning',
    title: `Gate ${input.gate} failed for ${input.target}`,
    summary: `No pass within ${input.timeoutMinutes} minute(s): ${reason}`.slice(0, 1000),
    facts: { Gate: input.gate, Target: input.target, Run: run.id, Environment: deps.environment },
    correlationId: run.correlationId,
    time: deps.clock.now(),
    data: {
      gate: input.gate,
      target: input.target,
      runId: run.id,
      reason: reason.slice(0, 2000),
      environment: deps.environment,
    },
  };
  await runOnce(
    deps.idempotency,
    `gate-failed|${run.id}`,
    {
      owner: `gate:${run.id}:${run.ticket}`,
      ttlMs: deps.idempotencyTtlMs,
      leaseMs: deps.claimLeaseMs,
      busyMessage: `the failure of gate run ${run.id} is being announced by another attempt`,
      summarize: (results) => results,
      abortSignal,
    },
    (once) => sendToChannelsOnce(notification, channels, deps, once, { abortSignal }),
  );
}

/**
 * Starts (or finds) the waiting evaluation of a gate for a target. `timeoutMinutes` defaults to the
 * gate's `wait.maxMinutes` and may not exceed it.
 */
export async function startGateWait(
  engine: RunEngine,
  policy: Policy,
  request: {
    gate: string;
    target: string;
    timeoutMinutes?: number;
    actor: string;
    correlationId: string;
    now: Date;
  },
): Promise<{ run: Run; created: boolean }> {
  const gate = findGate(policy, request.gate);
  if (!gate) throw new ValidationError(`no gate ${request.gate}`, ['gate: not defined by the policy']);
  const timeoutMinutes = request.timeoutMinutes ?? gate.wait.maxMinutes;
  const input: GateRunInput = {
    gate: gate.name,
    target: request.target,
    timeoutMinutes,
    intervalSeconds: gate.wait.intervalSeconds,
    startedAt: request.now.toISOString(),
  };
  return engine.startRun(GATE_KIND, {
    target: gateRunTarget(gate.name, request.target),
    input,
    actor: request.actor,
    correlationId: request.correlationId,
    ifActive: 'return',
  });
}

/** What `GET /api/gates/evaluations/{id}` answers: the run's state as a gate verdict, with the evidence. */
export function describeGateRun(run: Run, policy: Policy) {
  const input = run.input as GateRunInput;
  const step = run.steps[0];
  const output = (step?.output ?? {}) as {
    verdict?: string;
    evaluations?: number;
    reason?: string;
    last?: ReturnType<typeof compactEvaluation>;
  };
  const status =
    run.state === 'succeeded'
      ? output.verdict === 'pass'
        ? 'passed'
        : 'failed'
      : run.state === 'failed'
        ? 'failed'
        : run.state === 'cancelled' || run.state === 'cancelling'
          ? 'cancelled'
          : 'evaluating';
  const gate = findGate(policy, input.gate);
  const target = gate?.targets.find((t) => t.name === input.target);
  // The queries are the policy's (the run keeps a compact evaluation): shown with the target's parameters.
  const latest = output.last
    ? {
        ...output.last,
        conditions: output.last.conditions.map((c) => {
          const condition = gate?.conditions.find((x) => x.name === c.name);
          return condition?.type === 'logs' && target ? { ...c, query: queryText(target, condition) } : c;
        }),
      }
    : null;
  return {
    id: run.id,
    gate: input.gate,
    target: input.target,
    status,
    verdict: status === 'passed' ? 'pass' : status === 'failed' ? 'fail' : null,
    reason:
      status === 'failed'
        ? (output.reason ?? run.error?.message ?? output.last?.reason ?? 'failed')
        : status === 'passed'
          ? (output.last?.reason ?? 'passed')
          : null,
    evaluations: output.evaluations ?? 0,
    startedAt: input.startedAt,
    timeoutAt: new Date(Date.parse(input.startedAt) + input.timeoutMinutes * 60_000).toISOString(),
    intervalSeconds: input.intervalSeconds,
    nextEvaluationAt: status === 'evaluating' && run.dueOn ? run.dueOn.toISOString() : null,
    latest,
    error: run.error ?? null,
  };
}
