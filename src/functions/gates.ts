import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { authorize, ROLES } from '../lib/app/auth';
import { type AppDeps, getDeps } from '../lib/app/deps';
import { findGate, type GatePolicy, type GateTarget } from '../lib/config/policy';
import { NotFoundError, ValidationError } from '../lib/core/errors';
import { errorResponse, jsonResponse, readJsonObject } from '../lib/core/http';
import type { Logger } from '../lib/core/logging';
import { evaluateGate } from '../lib/gates/evaluate';
import { describeGateRun, GATE_KIND, startGateWait } from '../lib/gates/gateRun';
import { parseRunId } from '../lib/runs';
import { invocationLogger } from './invocation';

/** A gate answered in the request must leave time to answer well under the Functions HTTP limit (230 s). */
const SYNC_EVALUATION_MS = 150_000;
const MAX_BODY_BYTES = 4096;
const GATE_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

async function handle(
  request: HttpRequest,
  context: InvocationContext,
  operation: string,
  work: (deps: AppDeps, logger: Logger, actor: string) => Promise<HttpResponseInit>,
): Promise<HttpResponseInit> {
  const logger = invocationLogger(context, operation);
  try {
    const deps = getDeps();
    // Evaluating a gate changes nothing in the workload (it reads Monitor data and writes its audit):
    // Operations.Read, the least a pipeline needs (docs/decisions/0011-checks-and-gates.md).
    const caller = authorize(request, { authEnabled: deps.settings.authEnabled }, ROLES.read);
    return await work(deps, logger, caller.actor);
  } catch (error) {
    return errorResponse(error, context.invocationId, logger);
  }
}

/** The gate of the route: 400 for a name that cannot be one, 404 for one the policy does not define. */
function gateOf(deps: AppDeps, raw: string | undefined): GatePolicy {
  const name = raw ?? '';
  if (!GATE_NAME.test(name))
    throw new ValidationError('invalid gate name', ["name: lower-case letters, digits and '-' (1-63)"]);
  const gate = findGate(deps.policy, name);
  if (!gate)
    throw new NotFoundError(
      `no gate '${name}' in the policy (defined: ${deps.policy.gates.map((g) => g.name).join(', ') || 'none'})`,
    );
  return gate;
}

/**
 * `POST /api/gates/{name}` (Operations.Read), body `{ "target"?: string, "wait"?: true | { "timeoutMinutes": n } }`:
 * evaluates the gate for one of its targets (required when it has several). Without `wait`: 200 with
 * the verdict (`pass` / `fail`) and the evidence of every condition, evaluated in the request. With
 * `wait`: 202 and `Location: /api/gates/evaluations/{id}`, a waiting evaluation that goes on until a
 * pass or its timeout (at most the gate's `wait.maxMinutes`); a second request while one is under way
 * for the same gate and target gets the same evaluation. Bad input: 400 listing every problem; an
 * unknown gate: 404.
 */
export function evaluate(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, 'gates.evaluate', async (deps, logger, actor) => {
    const gate = gateOf(deps, request.params.name);
    const body = await readJsonObject(request, MAX_BODY_BYTES);
    const problems: string[] = [];
    const unknown = Object.keys(body).filter((k) => !['target', 'wait'].includes(k));
    if (unknown.length > 0) problems.push(`${unknown.join(', ')}: not allowed (allowed: target, wait)`);
    let target: GateTarget | undefined;
    const targets = gate.targets.map((t) => t.name).join(', ');
    if (body.target === undefined) {
      if (gate.targets.length === 1) target = gate.targets[0];
      else problems.push(`target: required, one of ${targets}`);
    } else {
      target = typeof body.target === 'string' ? gate.targets.find((t) => t.name === body.target) : undefined;
      if (!target) problems.push(`target: one of ${targets}`);
    }
    let wait: { timeoutMinutes?: number } | undefined;
    if (body.wait === true) wait = {};
    else if (body.wait !== undefined && body.wait !== false) {
      const w = body.wait as { timeoutMinutes?: unknown };
      const extra =
        typeof w === 'object' && w !== null ? Object.keys(w).filter((k) => k !== 'timeoutMinutes') : [];
      const minutes = typeof w === 'object' && w !== null ? w.timeoutMinutes : undefined;
      if (typeof w !== 'object' || w === null || Array.isArray(w) || extra.length > 0)
        problems.push('wait: true, or { "timeoutMinutes": n }');
      else if (
        minutes !== undefined &&
        (!Number.isInteger(minutes) || (minutes as number) < 1 || (minutes as number) > gate.wait.maxMinutes)
      )
        problems.push(
          `wait.timeoutMinutes: an integer from 1 to ${gate.wait.maxMinutes} (the gate's wait.maxMinutes)`,
        );
      else wait = minutes === undefined ? {} : { timeoutMinutes: minutes as number };
    }
    if (problems.length > 0)
      throw new ValidationError(`invalid gate request: ${problems.join('; ')}`, problems);
    await deps.ready();
    const { gate: gateDeps, engine } = deps.gates(logger);
    if (wait) {
      const { run, created } = await startGateWait(engine, deps.policy, {
        gate: gate.name,
        target: target!.name,
        ...(wait.timeoutMinutes !== undefined ? { timeoutMinutes: wait.timeoutMinutes } : {}),
        actor,
        correlationId: context.invocationId,
        now: gateDeps.clock.now(),
      });
      const statusUrl = `${new URL(request.url).origin}/api/gates/evaluations/${run.id}`;
      const answer = jsonResponse(
        202,
        {
          status: 'evaluating',
          created,
          evaluationId: run.id,
          statusUrl,
          evaluation: describeGateRun(run, deps.policy),
        },
        context.invocationId,
      );
      return {
        ...answer,
        headers: { ...answer.headers, location: statusUrl, 'retry-after': String(gate.wait.intervalSeconds) },
      };
    }
    const evaluation = await evaluateGate(gate, target!, gateDeps, {
      actor,
      correlationId: context.invocationId,
      sequence: 'request',
      abortSignal: AbortSignal.timeout(SYNC_EVALUATION_MS),
    });
    return jsonResponse(200, evaluation, context.invocationId);
  });
}

/**
 * `GET /api/gates/evaluations/{id}` (Operations.Read): a waiting evaluation: `status` evaluating,
 * passed, failed or cancelled, the verdict once over, the latest evidence; `Retry-After` while it
 * evaluates. 404 for an id that is not a gate evaluation.
 */
export function evaluationStatus(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  return handle(request, context, 'gates.status', async (deps, logger) => {
    const id = parseRunId(request.params.id);
    await deps.ready();
    const run = await deps.gates(logger).engine.getRun(id);
    if (!run || run.kind !== GATE_KIND) throw new NotFoundError(`gate evaluation ${id} does not exist`);
    const view = describeGateRun(run, deps.policy);
    const answer = jsonResponse(200, view, context.invocationId);
    if (view.status !== 'evaluating') return answer;
    const interval = Number((run.input as { intervalSeconds?: number }).intervalSeconds ?? 60);
    return { ...answer, headers: { ...answer.headers, 'retry-after': String(interval) } };
  });
}

/** `GET /api/gates` (Operations.Read): the gates the policy defines, their targets and conditions. */
export function listGates(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, 'gates.list', async (deps) => {
    const gates = deps.policy.gates.map((g) => ({
      name: g.name,
      description: g.description ?? null,
      windowMinutes: g.windowMinutes,
      wait: g.wait,
      targets: g.targets.map((t) => t.name),
      conditions: g.conditions.map((c) => ({
        name: c.name,
        type: c.type,
        operator: c.operator,
        threshold: c.threshold,
        ...(c.type === 'logs'
          ? { workspace: c.workspace, column: c.column }
          : { metric: c.metric, resource: c.resource }),
      })),
    }));
    return jsonResponse(200, { count: gates.length, gates }, context.invocationId);
  });
}

app.http('gates', { methods: ['GET'], authLevel: 'function', route: 'gates', handler: listGates });
app.http('evaluateGate', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'gates/{name}',
  handler: evaluate,
});
app.http('gateEvaluation', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'gates/evaluations/{id}',
  handler: evaluationStatus,
});
