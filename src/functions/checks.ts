import {
  app,
  type HttpRequest,
  type HttpResponseInit,
  type InvocationContext,
  type Timer,
} from '@azure/functions';
import { authorize, ROLES, type Role } from '../lib/app/auth';
import { type AppDeps, getDeps } from '../lib/app/deps';
import { configuredChecks, runCheck } from '../lib/checks/runCheck';
import { CHECK_NAMES, type CheckName } from '../lib/config/policy';
import { NotFoundError, ValidationError } from '../lib/core/errors';
import { errorResponse, jsonResponse } from '../lib/core/http';
import type { Logger } from '../lib/core/logging';
import { REPORT_ID } from '../lib/ports/reports';
import { invocationLogger } from './invocation';

const MAX_LIST = 100;
/** Timer function name of each check (`checkBackupReadiness`...). */
const TIMER_NAMES: Record<CheckName, string> = {
  backupReadiness: 'checkBackupReadiness',
  quotaHeadroom: 'checkQuotaHeadroom',
  platformVersions: 'checkPlatformVersions',
  credentialHygiene: 'checkCredentialHygiene',
};

/**
 * A check the policy configures, from the route: 404 for a name that is not a check the policy runs
 * (the configured ones are listed), before anything is read.
 */
function checkOf(deps: AppDeps, raw: string | undefined): CheckName {
  const configured = configuredChecks(deps.policy);
  const name = CHECK_NAMES.find((c) => c === raw);
  if (!name || !configured.includes(name)) {
    throw new NotFoundError(
      `no check '${String(raw).slice(0, 64)}' in the policy (configured: ${configured.join(', ') || 'none'})`,
    );
  }
  return name;
}

async function handle(
  request: HttpRequest,
  context: InvocationContext,
  role: Role,
  operation: string,
  work: (deps: AppDeps, logger: Logger, actor: string) => Promise<HttpResponseInit>,
): Promise<HttpResponseInit> {
  const logger = invocationLogger(context, operation);
  try {
    const deps = getDeps();
    const caller = authorize(request, { authEnabled: deps.settings.authEnabled }, role);
    return await work(deps, logger, caller.actor);
  } catch (error) {
    return errorResponse(error, context.invocationId, logger);
  }
}

/** `GET /api/checks` (Operations.Read): the checks the policy runs, their schedules and latest reports. */
export function listChecks(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.read, 'checks.list', async (deps, logger) => {
    await deps.ready();
    const store = deps.checks(logger).reports;
    const checks = await Promise.all(
      configuredChecks(deps.policy).map(async (name) => {
        const [latest] = await store.list(name, { limit: 1 });
        return {
          name,
          schedule: deps.policy.checks[name]!.schedule,
          timer: TIMER_NAMES[name],
          latest: latest ?? null,
        };
      }),
    );
    return jsonResponse(200, { count: checks.length, checks }, context.invocationId);
  });
}

/**
 * `POST /api/checks/{name}/run` (Operations.Execute): runs the check now (as its timer would), stores
 * and returns its report (200), notifying as the timer does. The check only reads the platform; the
 * role is Execute because it writes a report and may notify people.
 */
export function runCheckNow(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.execute, 'checks.run', async (deps, logger, actor) => {
    const name = checkOf(deps, request.params.name);
    await deps.ready();
    const report = await runCheck(
      name,
      { trigger: 'manual', actor, correlationId: context.invocationId },
      deps.checks(logger),
    );
    return jsonResponse(200, report, context.invocationId);
  });
}

/** `GET /api/checks/{name}/reports?limit=` (Operations.Read): the check's reports, newest first, without findings. */
export function listReports(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.read, 'checks.reports', async (deps, logger) => {
    const name = checkOf(deps, request.params.name);
    const raw = request.query.get('limit');
    const limit = raw === null ? 20 : Number(raw);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST)
      throw new ValidationError('invalid report query', [`limit: an integer from 1 to ${MAX_LIST}`]);
    await deps.ready();
    const reports = await deps.checks(logger).reports.list(name, { limit });
    return jsonResponse(200, { check: name, count: reports.length, reports }, context.invocationId);
  });
}

/** `GET /api/checks/{name}/reports/{id}` (Operations.Read): one report with its findings; `latest` for the newest. */
export function getReport(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return handle(request, context, ROLES.read, 'checks.report', async (deps, logger) => {
    const name = checkOf(deps, request.params.name);
    const id = request.params.id ?? '';
    if (id !== 'latest' && !REPORT_ID.test(id))
      throw new ValidationError('invalid report id', [
        "id: 'latest' or a report id such as 20260101T053000000Z-1a2b3c",
      ]);
    await deps.ready();
    const store = deps.checks(logger).reports;
    const report = id === 'latest' ? await store.latest(name) : await store.get(name, id);
    if (!report)
      throw new NotFoundError(
        id === 'latest' ? `check ${name} has no report yet` : `no report ${id} of check ${name}`,
      );
    return jsonResponse(200, report, context.invocationId);
  });
}

/** The timer of one check: runs it on the policy's schedule (the Functions host runs each timer as a singleton). */
function checkTimer(name: CheckName) {
  return async (_timer: Timer, context: InvocationContext): Promise<void> => {
    const deps = getDeps();
    const logger = invocationLogger(context, TIMER_NAMES[name]);
    await deps.ready();
    await runCheck(
      name,
      { trigger: 'timer', actor: 'system:timer', correlationId: context.invocationId },
      deps.checks(logger),
    );
  };
}

for (const name of configuredChecks(getDeps().policy)) {
  app.timer(TIMER_NAMES[name], {
    schedule: getDeps().policy.checks[name]!.schedule,
    handler: checkTimer(name),
  });
}
app.http('checks', { methods: ['GET'], authLevel: 'function', route: 'checks', handler: listChecks });
app.http('runCheck', {
  methods: ['POST'],
  authLevel: 'function',
  route: 'checks/{name}/run',
  handler: runCheckNow,
});
app.http('checkReports', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'checks/{name}/reports',
  handler: listReports,
});
app.http('checkReport', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'checks/{name}/reports/{id}',
  handler: getReport,
});
