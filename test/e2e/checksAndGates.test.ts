/**
 * The scheduled maintenance checks and the health gates end to end, on the bundle the app deploys,
 * the local host and the sandbox (default scenario and bundled policy): every check through its
 * endpoint and its timer, reports stored and read back, notices sent; every gate answer (pass, fail,
 * missing, partial, unreachable), the waiting mode across clock moves, bad requests, the audit, and
 * the roles each endpoint takes.
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROLES } from '../../src/lib/app/auth';
import { type RunningLocalApp, startLocalApp } from '../../src/local/app';
import { parseScenario, type Scenario } from '../../src/local/sandbox';
import { appBundle } from '../support/bundle';
import { storageConnectionString, uniquePrefix } from '../support/storage';

const WORKSPACE = '6a1f3c2e-8b4d-4e5f-9a7b-1c2d3e4f5a6b';
const quiet = { info: () => {}, warn: () => {}, error: () => {} };
const consoleMethods = ['log', 'info', 'warn', 'error', 'debug'] as const;
const originalConsole = consoleMethods.map((m) => [m, console[m]] as const);
beforeAll(() => {
  for (const m of consoleMethods) console[m] = () => {};
});
afterAll(() => {
  for (const [m, original] of originalConsole) console[m] = original as never;
});

let app: RunningLocalApp | undefined;
afterEach(async () => {
  await app?.stop();
  app = undefined;
});

// The host registers the run worker's queue once per process (an entry's registrations are replayed
// for the next host), so every app of this file shares one work queue; tables stay per app.
const WORK_QUEUE = `${uniquePrefix('g')}-work`;

async function start(
  options: { scenario?: Scenario; requireToken?: boolean } = {},
): Promise<RunningLocalApp> {
  const bundle = appBundle();
  const prefix = uniquePrefix('g');
  return startLocalApp({
    appEntry: bundle.entry,
    appRoot: bundle.root,
    port: 0,
    startTimers: false,
    logger: quiet,
    env: {
      AzureWebJobsStorage: storageConnectionString(),
      STAMPKEEPER_TABLE_PREFIX: prefix,
      STAMPKEEPER_WORK_QUEUE: WORK_QUEUE,
    },
    ...(options.scenario ? { sandbox: { scenario: options.scenario } } : {}),
    ...(options.requireToken ? { auth: { defaultCaller: false } } : {}),
  });
}

// biome-ignore lint/suspicious/noExplicitAny: JSON answers are read freely in assertions
type Answer = { status: number; body: any; headers: Headers };

async function call(path: string, init: RequestInit = {}): Promise<Answer> {
  const response = await fetch(`${app!.url}${path}`, init);
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    // The platform's 401 is text.
  }
  return { status: response.status, body, headers: response.headers };
}
const post = (path: string, body?: unknown, headers: Record<string, string> = {}) =>
  call(path, { method: 'POST', body: body === undefined ? undefined : JSON.stringify(body), headers });
const logsResult = (query: string, result: string) =>
  post('/sandbox/monitor/logs/result', { workspaceId: WORKSPACE, query, result });
const logsState = (state: string) => post('/sandbox/monitor/logs/state', { workspaceId: WORKSPACE, state });

async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, tries = 120): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('maintenance checks on the sandbox (the bundle)', () => {
  it('runs every check of the bundled policy: reports stored, read back and listed, a notice when one needs a person', async () => {
    // Prepare
    app = await start();

    // Act
    const reports: Record<string, Answer> = {};
    for (const name of ['backupReadiness', 'quotaHeadroom', 'platformVersions', 'credentialHygiene'])
      reports[name] = await post(`/api/checks/${name}/run`);
    const latest = await call('/api/checks/quotaHeadroom/reports/latest');
    const byId = await call(`/api/checks/backupReadiness/reports/${reports.backupReadiness!.body.id}`);
    const list = await call('/api/checks');
    const history = await call('/api/checks/quotaHeadroom/reports?limit=5');
    const audit = await call('/api/audit?since=2026-01-01T00:00:00Z&target=checks%2FquotaHeadroom');

    // Assess
    for (const [name, answer] of Object.entries(reports)) expect(answer.status, name).toBe(200);
    const statuses = (r: Answer) =>
      r.body.findings.map((f: { code: string; status: string }) => `${f.code}:${f.status}`);
    expect(reports.backupReadiness!.body.status).toBe('ok');
    expect(statuses(reports.backupReadiness!)).toEqual([
      'backup.restoreWindow:ok',
      'drill.restoreRequest:ok',
      'backup.policy:ok',
      'backup.restoreProcess:ok',
    ]);
    const drill = reports.backupReadiness!.body.findings[1];
    expect(drill.facts).toMatchObject({ targetAccount: 'stampkeeper-sandbox-cosmos-restore', sent: false });
    expect(drill.evidence.request.body.properties.restoreParameters.restoreSource).toMatch(
      /\/providers\/Microsoft\.DocumentDB\/locations\/West Europe\/restorableDatabaseAccounts\/[0-9a-f-]{36}$/,
    );
    expect(reports.backupReadiness!.body.findings[3].action.runbook).toBe(
      'docs/runbooks/cosmos-db-restore.md',
    );
    expect(reports.quotaHeadroom!.body.status).toBe('attention');
    expect(statuses(reports.quotaHeadroom!)).toEqual([
      'quota.usage:warning',
      'quota.usage:ok',
      'quota.usage:ok',
    ]);
    expect(reports.quotaHeadroom!.body.findings[0].facts).toMatchObject({
      quota: 'standardDDv5Family',
      suggestedLimit: 92,
    });
    expect(reports.platformVersions!.body.findings[0].title).toBe(
      'aks-stamp-weu node pool nodepool1: Kubernetes 1.32 is the oldest supported minor',
    );
    expect(statuses(reports.platformVersions!)).toEqual(
      expect.arrayContaining(['runtime.node:ok', 'runtime.extensionBundle:ok', 'runtime.supportData:ok']),
    );
    expect(statuses(reports.credentialHygiene!)).toEqual([
      'cosmos.keyAuth:warning',
      'secret.expiry:ok',
      'cosmos.keyAuth:ok',
    ]);
    expect(latest.body).toEqual(reports.quotaHeadroom!.body);
    expect(byId.body.id).toBe(reports.backupReadiness!.body.id);
    expect(
      list.body.checks.map((c: { name: string; timer: string; latest: { status: string } }) => [
        c.name,
        c.timer,
        c.latest.status,
      ]),
    ).toEqual([
      ['backupReadiness', 'checkBackupReadiness', 'ok'],
      ['quotaHeadroom', 'checkQuotaHeadroom', 'attention'],
      ['platformVersions', 'checkPlatformVersions', 'attention'],
      ['credentialHygiene', 'checkCredentialHygiene', 'attention'],
    ]);
    expect(history.body.reports).toHaveLength(1);
    expect(audit.body.records.map((r: { action: string; outcome: string }) => [r.action, r.outcome])).toEqual(
      [['check.run', 'reported']],
    );
    const notices = app.sandbox!.eventGrid.published().map((p) => p.event.type);
    expect(notices.filter((t) => t === 'com.stampkeeper.check.attention')).toHaveLength(3);
    expect(notices).not.toContain('com.stampkeeper.check.ok');
  });

  it('registers a timer per check on its policy schedule; a timer run stores a report like the endpoint', async () => {
    // Prepare
    app = await start();
    const timers = app.host.functions.filter(
      (f) => f.trigger.type === 'timerTrigger' && f.name.startsWith('check'),
    );

    // Act
    const before = app.host.invoker;
    const invoked = await fetch(`${app.url}/admin/functions/checkQuotaHeadroom`, {
      method: 'POST',
      body: '{}',
    });
    const report = await waitFor(async () => {
      const answer = await call('/api/checks/quotaHeadroom/reports/latest');
      return answer.status === 200 && before.inFlight === 0 ? answer.body : undefined;
    }, 'the timer report');

    // Assess
    expect(timers.map((f) => [f.name, f.trigger.type, f.trigger.schedule])).toEqual([
      ['checkBackupReadiness', 'timerTrigger', '0 0 5 * * *'],
      ['checkQuotaHeadroom', 'timerTrigger', '0 30 5 * * *'],
      ['checkPlatformVersions', 'timerTrigger', '0 0 6 * * 1'],
      ['checkCredentialHygiene', 'timerTrigger', '0 0 7 * * *'],
    ]);
    expect(invoked.status).toBe(202);
    expect(report).toMatchObject({
      check: 'quotaHeadroom',
      trigger: 'timer',
      actor: 'system:timer',
      status: 'attention',
    });
  });

  it('fails a check whose data cannot be read, never reports it ok, and answers bad requests with a clear 4xx', async () => {
    // Prepare: the estate lost its quotas and its periodic Cosmos DB account.
    const scenario = parseScenario(readFileSync('sandbox/default.scenario.yaml', 'utf8'));
    const arm = scenario.arm as { quotas?: unknown; cosmosDbAccounts: Array<{ name: string }> };
    delete arm.quotas;
    arm.cosmosDbAccounts = arm.cosmosDbAccounts.filter((a) => a.name !== 'stampkeeper-sandbox-cosmos-eu');
    app = await start({ scenario });

    // Act
    const quota = await post('/api/checks/quotaHeadroom/run');
    const backup = await post('/api/checks/backupReadiness/run');
    const unknown = await post('/api/checks/diskSpace/run');
    const noReport = await call('/api/checks/platformVersions/reports/latest');
    const badId = await call('/api/checks/quotaHeadroom/reports/not-an-id');
    const badLimit = await call('/api/checks/quotaHeadroom/reports?limit=1000');

    // Assess
    expect(quota.body.status).toBe('failed');
    expect(quota.body.counts).toEqual({ ok: 0, warning: 0, failed: 0, unknown: 3 });
    expect(backup.body.status).toBe('failed');
    expect(backup.body.findings[0]).toMatchObject({
      status: 'unknown',
      code: 'backup.account',
      facts: { error: 'NotFound' },
    });
    expect(app.sandbox!.eventGrid.published().map((p) => p.event.type)).toContain(
      'com.stampkeeper.check.failed',
    );
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'NotFound']);
    expect(unknown.body.error.message).toContain(
      'configured: backupReadiness, quotaHeadroom, platformVersions, credentialHygiene',
    );
    expect(noReport.status).toBe(404);
    expect([badId.status, badLimit.status]).toEqual([400, 400]);
  });
});

describe('health gates on the sandbox (the bundle)', () => {
  it('passes on healthy data with the evidence, fails over a threshold, and never passes on missing, partial or unreachable data', async () => {
    // Prepare
    app = await start();
    const verdicts: Record<string, Answer> = {};

    // Act
    verdicts.healthy = await post('/api/gates/stamp-health', { target: 'stamp-weu' });
    await logsResult('stamp-p95-latency', 'fail');
    verdicts.slow = await post('/api/gates/stamp-health', {});
    await logsResult('stamp-p95-latency', 'pass');
    await logsResult('stamp-failure-rate', 'missing');
    verdicts.missing = await post('/api/gates/stamp-health', {});
    await logsResult('stamp-failure-rate', 'partial');
    verdicts.partial = await post('/api/gates/stamp-health', {});
    await logsResult('stamp-failure-rate', 'pass');
    for (const state of ['forbidden', 'unavailable', 'empty', 'unreachable']) {
      await logsState(state);
      verdicts[state] = await post('/api/gates/stamp-health', {});
    }
    const audit = await call(
      '/api/audit?since=2026-01-01T00:00:00Z&target=gates%2Fstamp-health%2Fstamp-weu&limit=100',
    );

    // Assess
    const healthy = verdicts.healthy!;
    expect(healthy.status).toBe(200);
    expect(healthy.body).toMatchObject({ gate: 'stamp-health', target: 'stamp-weu', verdict: 'pass' });
    expect(
      healthy.body.conditions.map((c: { name: string; value: number; threshold: number }) => [
        c.name,
        c.value,
        c.threshold,
      ]),
    ).toEqual([
      ['failure-rate', 0.4, 1],
      ['p95-latency', 310, 800],
      ['dead-letters', 0, 0],
    ]);
    expect(healthy.body.conditions[0].query).toMatch(
      /^let roleName = 'stamp-weu';\n\/\/ stampkeeper:query=stamp-failure-rate\n/,
    );
    expect(healthy.body.conditions[2].metric).toMatchObject({
      name: 'DeadletteredMessages',
      aggregation: 'Maximum',
    });
    const status = (name: string) =>
      verdicts[name]!.body.conditions.find((c: { status: string }) => c.status !== 'passed')?.status;
    expect(verdicts.slow!.body.verdict).toBe('fail');
    expect(verdicts.slow!.body.reason).toBe('p95-latency: failed (p95 = 1240 not < 800)');
    for (const name of ['missing', 'partial', 'forbidden', 'unavailable', 'empty', 'unreachable']) {
      expect(verdicts[name]!.status, name).toBe(200);
      expect(verdicts[name]!.body.verdict, name).toBe('fail');
    }
    expect([status('missing'), status('partial'), status('forbidden'), status('unreachable')]).toEqual([
      'noData',
      'partial',
      'error',
      'error',
    ]);
    // One record per evaluation (the sandbox clock stands still: same instant, so compared as a set).
    expect(
      audit.body.records.map((r: { action: string; outcome: string }) => `${r.action}:${r.outcome}`).sort(),
    ).toEqual([...Array(7).fill('gate.evaluate:failed'), 'gate.evaluate:succeeded']);
  });

  it('waits for a pass across clock moves (202, then the status URL), one evaluation per gate and target, and times out failed', {
    timeout: 180_000,
  }, async () => {
    // Prepare
    app = await start();
    await logsResult('stamp-failure-rate', 'fail');

    // Act
    const started = await post('/api/gates/stamp-health', {
      target: 'stamp-weu',
      wait: { timeoutMinutes: 30 },
    });
    const again = await post('/api/gates/stamp-health', { wait: true });
    const statusUrl = new URL(started.headers.get('location')!).pathname;
    const first = await waitFor(async () => {
      const answer = await call(statusUrl);
      return answer.body.evaluations >= 1 ? answer : undefined;
    }, 'the first evaluation');
    await call('/sandbox/clock/advance', { method: 'POST', body: JSON.stringify({ minutes: 2 }) });
    await logsResult('stamp-failure-rate', 'pass');
    await call('/sandbox/clock/advance', { method: 'POST', body: JSON.stringify({ minutes: 1 }) });
    const passed = await waitFor(async () => {
      const answer = await call(statusUrl);
      return answer.body.status !== 'evaluating' ? answer : undefined;
    }, 'the pass');
    // A second waiting evaluation that never passes: it ends failed at its timeout.
    await logsResult('stamp-failure-rate', 'fail');
    const doomed = await post('/api/gates/stamp-health', { wait: { timeoutMinutes: 2 } });
    const doomedUrl = new URL(doomed.headers.get('location')!).pathname;
    let probes = 0;
    const failed = await waitFor(
      async () => {
        // The clock moves a minute every second or so: each evaluation is a queue message to handle.
        if (++probes % 4 === 0)
          await call('/sandbox/clock/advance', { method: 'POST', body: JSON.stringify({ minutes: 1 }) });
        const answer = await call(doomedUrl);
        return answer.body.status !== 'evaluating' ? answer : undefined;
      },
      'the timeout',
      400,
    );

    // Assess
    expect(started.status).toBe(202);
    expect(started.headers.get('retry-after')).toBe('60');
    expect(started.body).toMatchObject({ status: 'evaluating', created: true });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ evaluationId: started.body.evaluationId, created: false });
    expect(first.headers.get('retry-after')).toBe('60');
    expect(first.body).toMatchObject({ status: 'evaluating', verdict: null, latest: { verdict: 'fail' } });
    expect(first.body.latest.conditions[0].query).toContain('stampkeeper:query=stamp-failure-rate');
    expect(passed.body).toMatchObject({ status: 'passed', verdict: 'pass' });
    expect(passed.body.evaluations).toBeGreaterThanOrEqual(2);
    expect(passed.headers.get('retry-after')).toBeNull();
    expect(doomed.body.evaluationId).not.toBe(started.body.evaluationId);
    expect(failed.body).toMatchObject({ status: 'failed', verdict: 'fail' });
    expect(failed.body.reason).toBe('timed out after 2 minute(s) without a pass');
  });

  it('answers unknown gates with 404 and bad parameters with 400 listing every problem, before evaluating anything', async () => {
    // Prepare
    app = await start();
    const queriesBefore = app.sandbox!.monitor.logs.requests().length;

    // Act
    const unknownGate = await post('/api/gates/no-such-gate', {});
    const badName = await post('/api/gates/Bad_Name', {});
    const badBody = await post('/api/gates/stamp-health', {
      target: 'stamp-nowhere',
      wait: { timeoutMinutes: 100000 },
      colour: 'blue',
    });
    const badWait = await post('/api/gates/stamp-health', { wait: 'soon' });
    const notJson = await call('/api/gates/stamp-health', { method: 'POST', body: '{not json' });
    const unknownEvaluation = await call('/api/gates/evaluations/not-a-run-id');
    const list = await call('/api/gates');

    // Assess
    expect([unknownGate.status, unknownGate.body.error.message]).toEqual([
      404,
      "no gate 'no-such-gate' in the policy (defined: stamp-health)",
    ]);
    expect(badName.status).toBe(400);
    expect(badBody.status).toBe(400);
    expect(badBody.body.error.problems).toEqual([
      'colour: not allowed (allowed: target, wait)',
      'target: one of stamp-weu',
      "wait.timeoutMinutes: an integer from 1 to 60 (the gate's wait.maxMinutes)",
    ]);
    expect(badWait.body.error.problems).toEqual(['wait: true, or { "timeoutMinutes": n }']);
    expect(notJson.status).toBe(400);
    expect([unknownEvaluation.status, unknownEvaluation.body.error.code]).toEqual([404, 'NotFound']);
    expect(app.sandbox!.monitor.logs.requests().length).toBe(queriesBefore);
    expect(list.body.gates[0]).toMatchObject({ name: 'stamp-health', targets: ['stamp-weu'] });
  });

  it('takes Operations.Read for gates and reports, Operations.Execute to run a check, and nothing without a caller', async () => {
    // Prepare
    app = await start({ requireToken: true });
    const token = async (roles: string[]) => {
      const response = await fetch(`${app!.url}/admin/token`, {
        method: 'POST',
        body: JSON.stringify({ app: '5c0ffee0-0000-4000-8000-000000000001', roles }),
      });
      return ((await response.json()) as { token: string }).token;
    };
    const reader = { authorization: `Bearer ${await token([ROLES.read])}` };
    const executor = { authorization: `Bearer ${await token([ROLES.execute])}` };

    // Act
    const anonymous = await post('/api/gates/stamp-health', {});
    const readerGate = await post('/api/gates/stamp-health', {}, reader);
    const readerRun = await post('/api/checks/quotaHeadroom/run', undefined, reader);
    const executorRun = await post('/api/checks/quotaHeadroom/run', undefined, executor);
    const readerReport = await call('/api/checks/quotaHeadroom/reports/latest', { headers: reader });
    const executorReport = await call('/api/checks/quotaHeadroom/reports/latest', { headers: executor });

    // Assess
    expect(anonymous.status).toBe(401);
    expect(readerGate.status).toBe(200);
    expect(readerRun.status).toBe(403);
    expect(executorRun.status).toBe(200);
    expect(executorRun.body.actor).toBe('app:5c0ffee0-0000-4000-8000-000000000001');
    expect(readerReport.status).toBe(200);
    expect(executorReport.status).toBe(403);
  });
});
