import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { authorize, type Caller, ROLES, type Role } from '../lib/app/auth';
import { getDeps } from '../lib/app/deps';
import type { Policy } from '../lib/config/policy';
import { keyVaultUrl } from '../lib/config/vaults';
import { ConflictError, NotFoundError, ValidationError } from '../lib/core/errors';
import { errorResponse, jsonResponse, readJsonObject } from '../lib/core/http';
import type { Logger } from '../lib/core/logging';
import { parseRollCallback, recordRollCallback } from '../lib/rotation/rollCallbacks';
import { ROTATION_KIND } from '../lib/rotation/rotation';
import type { RotationStartDeps } from '../lib/rotation/startRotation';
import { rotationPolicyOf, rotationTarget, startRotation } from '../lib/rotation/startRotation';
import { describeRun, MAX_RUN_BODY_BYTES, parseRunId } from '../lib/runs';
import { invocationLogger } from './invocation';

const SECRET_NAME = /^[0-9A-Za-z-]{1,127}$/;
const MAX_HISTORY = 100;

/**
 * The rotation endpoints, for pipelines and people: start a rotation now, read one, list a secret's
 * rotations, approve one, resume a halted one. The function key, then the caller's app role
 * (`Operations.Execute`, `Operations.Read`, `Operations.Approve`) from built-in authentication,
 * checked before anything is read; bad input answers 400 and changes nothing.
 */
async function handle(
  request: HttpRequest,
  context: InvocationContext,
  role: Role,
  operation: string,
  work: (deps: RotationStartDeps, caller: Caller, logger: Logger) => Promise<HttpResponseInit>,
): Promise<HttpResponseInit> {
  const logger = invocationLogger(context, operation);
  try {
    const deps = getDeps();
    const caller = authorize(request, { authEnabled: deps.settings.authEnabled }, role);
    return await work(deps.rotations(logger), caller, logger);
  } catch (error) {
    return errorResponse(error, context.invocationId, logger);
  }
}

/** `{ vault, secret }` (a vault name or URL, a secret name) from a body or a query, checked. */
function secretOf(
  vault: unknown,
  secret: unknown,
  problems: string[],
): { vaultUrl: string; secretName: string } {
  const vaultUrl = typeof vault === 'string' ? keyVaultUrl(vault) : undefined;
  if (!vaultUrl) problems.push('vault: a vault name (contoso-kv) or its https URL is required');
  if (typeof secret !== 'string' || !SECRET_NAME.test(secret))
    problems.push('secret: a Key Vault secret name (1-127 letters, digits and dashes) is required');
  return { vaultUrl: vaultUrl ?? '', secretName: typeof secret === 'string' ? secret : '' };
}

/**
 * `POST /api/rotations` (Operations.Execute), body `{ "vault", "secret", "mode"?: "alternate" |
 * "revoke", "dryRun"?: boolean }`: starts the rotation of a managed secret now (no window). 202 with
 * the run (`status: started`, or `active` when one is under way: one per secret); 409 when the
 * secret is halted after a failed rotation (resume that run); 404 / 400 for a secret the policy
 * does not rotate.
 */
export function rotations(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  if (request.method === 'GET') return listRotations(request, context);
  return handle(request, context, ROLES.execute, 'rotations.start', async (deps, caller) => {
    const body = await readJsonObject(request, MAX_RUN_BODY_BYTES);
    const problems: string[] = [];
    const unknown = Object.keys(body).filter((k) => !['vault', 'secret', 'mode', 'dryRun'].includes(k));
    if (unknown.length > 0)
      problems.push(`${unknown.join(', ')}: not allowed (allowed: vault, secret, mode, dryRun)`);
    const secret = secretOf(body.vault, body.secret, problems);
    if (body.mode !== undefined && body.mode !== 'alternate' && body.mode !== 'revoke')
      problems.push("mode: 'alternate' or 'revoke'");
    if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') problems.push('dryRun: true or false');
    if (problems.length > 0)
      throw new ValidationError(`invalid rotation request: ${problems.join('; ')}`, problems);
    await getDeps().ready();
    rotationPolicyOf(deps.policy, secret.vaultUrl, secret.secretName);
    const result = await startRotation(
      {
        ...secret,
        trigger: 'manual',
        ...(body.mode ? { mode: body.mode as 'alternate' | 'revoke' } : {}),
        ...(body.dryRun !== undefined ? { dryRun: body.dryRun as boolean } : {}),
        actor: caller.actor,
        correlationId: context.invocationId,
      },
      deps,
    );
    if (result.status === 'halted') {
      throw new ConflictError(
        `the rotation of ${secret.secretName} is halted: run ${result.failedRun.id} failed (${result.failedRun.error?.code ?? 'failed'}); resume it with POST /api/rotations/${result.failedRun.id}/resume`,
        { retryable: false, metadata: { runId: result.failedRun.id } },
      );
    }
    return jsonResponse(
      202,
      { status: result.status, runId: result.run.id, run: describeRun(result.run) },
      context.invocationId,
    );
  });
}

/**
 * The vault of a secret named without one: the policy's only vault that holds a secret of that name.
 * Several: the caller must say which (400 naming them); none: `undefined` (the secret check then
 * answers 404).
 */
function vaultOfSecret(policy: Policy, secret: unknown, problems: string[]): string | undefined {
  if (typeof secret !== 'string' || !SECRET_NAME.test(secret)) return undefined;
  const vaults = [
    ...new Set(
      policy.secrets.filter((s) => s.name.toLowerCase() === secret.toLowerCase()).map((s) => s.vaultUrl),
    ),
  ];
  if (vaults.length > 1) {
    problems.push(
      `vault: secret ${secret} is in several vaults of the policy (${vaults.map((v) => new URL(v).hostname.split('.')[0]).join(', ')}): name one`,
    );
  }
  return vaults[0];
}

/**
 * `GET /api/rotations?secret=&vault=&limit=` (Operations.Read): a secret's rotations, newest first.
 * `vault` may be left out when only one vault of the policy holds a secret of that name.
 */
function listRotations(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.read, 'rotations.list', async (deps) => {
    const problems: string[] = [];
    const named = request.query.get('secret');
    const vault = request.query.get('vault') ?? vaultOfSecret(deps.policy, named, problems);
    if (vault === undefined && typeof named === 'string' && SECRET_NAME.test(named)) {
      throw new NotFoundError(`the policy does not name secret ${named} in any vault`);
    }
    const secret = secretOf(vault, named, problems);
    const limitRaw = request.query.get('limit');
    const limit = limitRaw ? Number(limitRaw) : 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY)
      problems.push(`limit: an integer from 1 to ${MAX_HISTORY}`);
    if (problems.length > 0)
      throw new ValidationError(`invalid rotation query: ${problems.join('; ')}`, problems);
    const { managed } = rotationPolicyOf(deps.policy, secret.vaultUrl, secret.secretName);
    await getDeps().ready();
    const vaultName = new URL(managed.vaultUrl).hostname.split('.')[0]!;
    const runs = await deps.engine.runsForTarget(ROTATION_KIND, rotationTarget(vaultName, managed.name), {
      limit,
    });
    const latest = runs[0];
    return jsonResponse(
      200,
      {
        secret: rotationTarget(vaultName, managed.name),
        halted: latest?.state === 'failed' ? latest.id : null,
        count: runs.length,
        runs: runs.map(describeRun),
      },
      context.invocationId,
    );
  });
}

async function rotationRun(deps: RotationStartDeps, raw: unknown) {
  const id = parseRunId(raw);
  const run = await deps.engine.getRun(id);
  if (!run || run.kind !== ROTATION_KIND) throw new NotFoundError(`rotation ${id} does not exist`);
  return run;
}

/** `GET /api/rotations/{id}` (Operations.Read): the rotation, its steps, outputs (no value) and error. */
export function getRotation(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.read, 'rotations.get', async (deps) => {
    await getDeps().ready();
    const run = await rotationRun(deps, request.params.id);
    return jsonResponse(200, describeRun(run), context.invocationId);
  });
}

/** `POST /api/rotations/{id}/approve` (Operations.Approve): the rotation goes on; the approver is recorded. */
export function approveRotation(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.approve, 'rotations.approve', async (deps, caller) => {
    const body = await readJsonObject(request, MAX_RUN_BODY_BYTES);
    if (body.comment !== undefined && (typeof body.comment !== 'string' || body.comment.length > 1000))
      throw new ValidationError('invalid approval', ['comment: text of at most 1000 characters']);
    await getDeps().ready();
    const run = await rotationRun(deps, request.params.id);
    const approved = await deps.engine.approveRun(run.id, {
      actor: caller.actor,
      ...(typeof body.comment === 'string' ? { comment: body.comment } : {}),
    });
    return jsonResponse(200, describeRun(approved), context.invocationId);
  });
}

/**
 * `POST /api/rotations/{id}/resume` (Operations.Execute): a person resumes the secret halted by this
 * failed rotation: a new run starts, which plans from the state the failure left (a version
 * published but not verified is rolled first, never regenerated over). 409 when the run is not the
 * secret's last failed rotation.
 */
export function resumeRotation(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.execute, 'rotations.resume', async (deps, caller) => {
    await getDeps().ready();
    const run = await rotationRun(deps, request.params.id);
    if (run.state !== 'failed') {
      throw new ConflictError(`rotation ${run.id} is ${run.state}, not failed: nothing to resume`, {
        retryable: false,
      });
    }
    const input = run.input as { vaultUrl: string; secretName: string };
    const result = await startRotation(
      {
        vaultUrl: input.vaultUrl,
        secretName: input.secretName,
        trigger: 'manual',
        resumes: run.id,
        actor: caller.actor,
        correlationId: context.invocationId,
      },
      deps,
    );
    if (result.status === 'halted')
      throw new ConflictError(`rotation ${run.id} could not be resumed`, { retryable: false });
    return jsonResponse(
      202,
      { status: result.status, runId: result.run.id, resumes: run.id, run: describeRun(result.run) },
      context.invocationId,
    );
  });
}

/**
 * `POST /api/rollcallbacks?id=&token=`, body `{ "status": "Succeeded" | "Failed", "reason"? }`: a
 * pipeline rolled by a callback webhook reports that it is done. Anonymous to the Functions host
 * and excluded from built-in authentication (the pipeline holds no Entra token and cannot know the
 * function key): the caller is authenticated by the one-time token of the URL the rotation gave
 * that roll, compared in constant time (docs/deploy.md, "Callback webhooks"). 200 when recorded;
 * 400 for a bad query or body; 403 for an unknown roll or a wrong token (alike); 409 when the
 * roll's callback was already received. Nothing is read before the input is checked.
 */
export async function rollCallback(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const logger = invocationLogger(context, 'rotations.callback');
  try {
    const deps = getDeps();
    const callback = parseRollCallback({
      id: request.query.get('id'),
      token: request.query.get('token'),
      body: await readJsonObject(request, MAX_RUN_BODY_BYTES),
    });
    await deps.ready();
    const recorded = await recordRollCallback(callback, deps.rollCallbacks(logger));
    return jsonResponse(
      200,
      { recorded: recorded.status, callback: recorded.callbackId },
      context.invocationId,
    );
  } catch (error) {
    return errorResponse(error, context.invocationId, logger);
  }
}

app.http('rotations', {
  methods: ['GET', 'POST'],
  authLevel: 'function',
  route: 'rotations',
  handler: rotations,
});
app.http('getRotation', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'rotations/{id}',
  handler: getRotation,
});
app.http('approveRotation', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'rotations/{id}/approve',
  handler: approveRotation,
});
app.http('resumeRotation', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'rotations/{id}/resume',
  handler: resumeRotation,
});
app.http('rollCallback', {
  methods: ['POST'],
  authLevel: 'anonymous',
  route: 'rollcallbacks',
  handler: rollCallback,
});
