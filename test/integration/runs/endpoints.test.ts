import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HttpRequest, type HttpResponseInit, InvocationContext } from '@azure/functions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveRun, cancelRun, getRun, rejectRun } from '../../../src/functions/runEndpoints';
import { resetDeps } from '../../../src/lib/app/deps';
import { newId } from '../../../src/lib/core/ids';
import { systemClock } from '../../../src/lib/ports/clock';
import type { RunKindDefinition } from '../../../src/lib/runs';
import { RunEngine } from '../../../src/lib/runs/engine';
import { beginStep } from '../../../src/lib/runs/rules';
import { createStateStores, type StateStores } from '../../../src/lib/state';
import { storageConnectionString, uniquePrefix } from '../../support/storage';
import { auditOf } from './support';

const ROLE = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role';

/** The platform's `X-MS-CLIENT-PRINCIPAL` for a user with these app roles. */
function principal(roles: string[]): string {
  const body = {
    auth_typ: 'aad',
    claims: [
      { typ: 'http://schemas.microsoft.com/identity/claims/objectidentifier', val: newId() },
      ...roles.map((val) => ({ typ: ROLE, val })),
    ],
    name_typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
    role_typ: ROLE,
  };
  return Buffer.from(JSON.stringify(body)).toString('base64');
}

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

async function call(
  handler: Handler,
  id: string,
  options: { caller?: string; body?: string } = {},
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are read freely in assertions
): Promise<HttpResponseInit & { jsonBody?: any }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.caller) {
    headers['x-ms-client-principal'] = options.caller;
    headers['x-ms-client-principal-name'] = 'lead@contoso.com';
  }
  const request = new HttpRequest({
    method: handler === getRun ? 'GET' : 'POST',
    url: `http://localhost/api/runs/${encodeURIComponent(id)}`,
    headers,
    params: { id },
    ...(options.body !== undefined ? { body: { string: options.body } } : {}),
  });
  return handler(request, new InvocationContext({ invocationId: newId(), functionName: 'runs' }));
}

const APPROVER = principal(['Operations.Approve']);
const READER = principal(['Operations.Read']);
const OPERATOR = principal(['Operations.Execute']);

describe('run endpoints (authorized, audited)', () => {
  let dir: string;
  let stores: StateStores;
  let engine: RunEngine;
  const kind: RunKindDefinition = {
    kind: 'remediate',
    steps: [
      { name: 'plan', run: async () => ({ status: 'done' }) },
      { name: 'scaleUp', approval: { expiresAfterMs: 3_600_000 }, run: async () => ({ status: 'done' }) },
    ],
  };

  /** A run parked before `scaleUp`, waiting for an approval. */
  async function parkedRun(): Promise<string> {
    const { run } = await engine.startRun('remediate', { target: 'sites/web-1', correlationId: newId() });
    await engine.advanceRun(run.id, { owner: 'a' });
    await engine.advanceRun(run.id, { owner: 'b' });
    return run.id;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stampkeeper-runs-'));
    const policyPath = join(dir, 'policy.yaml');
    writeFileSync(policyPath, 'version: 1\nnotifications:\n  defaults: []\n  channels: []\n');
    const prefix = uniquePrefix('r');
    process.env.AzureWebJobsStorage = storageConnectionString();
    process.env.STAMPKEEPER_TABLE_PREFIX = prefix;
    process.env.STAMPKEEPER_WORK_QUEUE = `${prefix}-work`;
    process.env.STAMPKEEPER_POLICY_PATH = policyPath;
    process.env.STAMPKEEPER_ENVIRONMENT = 'itest';
    process.env.WEBSITE_AUTH_ENABLED = 'true';
    resetDeps();
    stores = createStateStores({
      connectionString: storageConnectionString(),
      tablePrefix: prefix,
      workQueueName: `${prefix}-work`,
    });
    await stores.ensure();
    engine = new RunEngine({
      runs: stores.runs,
      queue: stores.workQueue,
      audit: stores.audit,
      clock: systemClock,
      kinds: [kind],
    });
  });

  afterAll(() => {
    delete process.env.WEBSITE_AUTH_ENABLED;
    resetDeps();
    rmSync(dir, { recursive: true, force: true });
  });

  it('approves: the caller is the approver and the audit actor', async () => {
    // Prepare
    const id = await parkedRun();

    // Act
    const response = await call(approveRun, id, { caller: APPROVER, body: '{"comment":"go ahead"}' });
    const audit = await auditOf(stores, id, { since: new Date(Date.now() - 3_600_000), until: new Date() });

    // Assess
    expect(response.status).toBe(200);
    expect(response.jsonBody).toMatchObject({ id, state: 'pending', currentStep: 'scaleUp' });
    expect(response.jsonBody.steps[1].approval).toMatchObject({
      decision: 'approved',
      decidedBy: 'user:lead@contoso.com',
      comment: 'go ahead',
    });
    expect(JSON.stringify(response.jsonBody)).not.toMatch(/etag|lease/i);
    expect(audit.find((r) => r.action === 'run.remediate.approve')).toMatchObject({
      actor: 'user:lead@contoso.com',
    });
  });

  it('rejects: the run is cancelled, recorded with the approver', async () => {
    // Prepare
    const id = await parkedRun();

    // Act
    const response = await call(rejectRun, id, {
      caller: APPROVER,
      body: '{"comment":"not during the sale"}',
    });

    // Assess
    expect(response.status).toBe(200);
    expect(response.jsonBody).toMatchObject({
      state: 'cancelled',
      error: { message: 'rejected by user:lead@contoso.com: not during the sale' },
    });
  });

  it('refuses without the right role, without a caller, or without built-in authentication, and changes nothing', async () => {
    // Prepare
    const id = await parkedRun();
    const before = await stores.runs.get(id);

    // Act
    const reader = await call(approveRun, id, { caller: READER });
    const nobody = await call(approveRun, id, {});
    process.env.WEBSITE_AUTH_ENABLED = 'false';
    resetDeps();
    const noAuth = await call(approveRun, id, { caller: APPROVER });
    process.env.WEBSITE_AUTH_ENABLED = 'true';
    resetDeps();
    const after = await stores.runs.get(id);

    // Assess
    expect([reader.status, nobody.status, noAuth.status]).toEqual([403, 401, 403]);
    expect(reader.jsonBody.error.code).toBe('Forbidden');
    expect(after?.etag).toBe(before?.etag);
  });

  it('answers 400 for bad input, 404 for an unknown run, 409 for a run awaiting nothing; nothing changes', async () => {
    // Prepare
    const id = await parkedRun();
    const before = await stores.runs.get(id);

    // Act
    const badId = await call(approveRun, '../x', { caller: APPROVER });
    const badJson = await call(approveRun, id, { caller: APPROVER, body: '{"comment":' });
    const unknownField = await call(approveRun, id, { caller: APPROVER, body: '{"approver":"me"}' });
    const tooLong = await call(approveRun, id, {
      caller: APPROVER,
      body: JSON.stringify({ comment: 'x'.repeat(2000) }),
    });
    const noReason = await call(cancelRun, id, { caller: OPERATOR, body: '{}' });
    const unknown = await call(approveRun, 'no-such-run', { caller: APPROVER });
    const after = await stores.runs.get(id);
    await call(approveRun, id, { caller: APPROVER });
    const twice = await call(approveRun, id, { caller: APPROVER });

    // Assess
    expect([badId.status, badJson.status, unknownField.status, tooLong.status, noReason.status]).toEqual([
      400, 400, 400, 400, 400,
    ]);
    expect(unknownField.jsonBody.error.problems).toEqual(['approver: unknown field (expected comment)']);
    expect(noReason.jsonBody.error.problems).toEqual(['reason: is required']);
    expect(unknown.status).toBe(404);
    expect(after?.etag).toBe(before?.etag);
    expect(twice.status).toBe(409);
  });

  it('reads a run, and cancels: 202 while a step is in flight (requested), 200 once cancelled', async () => {
    // Prepare: one run parked, one with a step in flight
    const parked = await parkedRun();
    const { run } = await engine.startRun('remediate', { target: 'sites/web-2', correlationId: newId() });
    await stores.runs.update(beginStep(run, 'msg:busy:0', new Date(), 600_000));

    // Act
    const read = await call(getRun, parked, { caller: READER });
    const readAsApprover = await call(getRun, parked, { caller: APPROVER });
    const cancelParked = await call(cancelRun, parked, {
      caller: OPERATOR,
      body: '{"reason":"change freeze"}',
    });
    const cancelBusy = await call(cancelRun, run.id, {
      caller: OPERATOR,
      body: '{"reason":"change freeze"}',
    });

    // Assess
    expect(read.status).toBe(200);
    expect(read.jsonBody).toMatchObject({
      id: parked,
      state: 'awaiting-approval',
      kind: 'remediate',
      target: 'sites/web-1',
    });
    expect(readAsApprover.status).toBe(403);
    expect(cancelParked.status).toBe(200);
    expect(cancelParked.jsonBody).toMatchObject({
      state: 'cancelled',
      error: { code: 'Cancelled', message: 'change freeze' },
    });
    expect(cancelBusy.status).toBe(202);
    expect(cancelBusy.jsonBody.cancelRequested).toMatchObject({
      actor: 'user:lead@contoso.com',
      reason: 'change freeze',
    });
  });
});
