import {
  app,
  type HttpRequest,
  type HttpResponseInit,
  type InvocationContext,
  type Timer,
} from '@azure/functions';
import { authorize, ROLES } from '../lib/app/auth';
import { getDeps } from '../lib/app/deps';
import { playbookTarget } from '../lib/config/playbooks';
import { NotFoundError, ValidationError } from '../lib/core/errors';
import { errorResponse, jsonResponse } from '../lib/core/http';
import { REMEDIATION_KIND } from '../lib/remediation/playbookRun';
import { scaleBackPlaybooks } from '../lib/remediation/scaleBack';
import { describeRun } from '../lib/runs';
import { invocationLogger } from './invocation';

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const MAX_HISTORY = 100;

/**
 * The scale-back timer, on the policy's `schedules.remediationScaleBack`: lowers what playbooks
 * raised, one step at a time, once their signal stayed low for the playbook's window. It only
 * decides; each step down is a `remediation` run (audited, notified). The Functions host runs a
 * timer function as a singleton; two ticks at once would still start one run per change.
 */
export async function remediationScaleBack(_timer: Timer, context: InvocationContext): Promise<void> {
  const deps = getDeps();
  const logger = invocationLogger(context, 'remediationScaleBack');
  await deps.ready();
  const reports = await scaleBackPlaybooks(deps.remediation(logger), {
    actor: 'system:timer',
    correlationId: context.invocationId,
    attemptId: context.invocationId,
  });
  const started = reports.filter((r) => r.outcome === 'started');
  const failed = reports.filter((r) => r.outcome === 'failed');
  if (failed.length > 0)
    logger.warn('scale-back looked at the playbooks, some failed', {
      started: started.length,
      failed: failed.map((r) => r.playbook),
    });
  else if (started.length > 0) logger.info('scale-back started', { runs: started.map((r) => r.runId) });
}

/**
 * `GET /api/remediations?playbook={name}&limit=` (Operations.Read): a playbook's runs on its target,
 * newest first (raises, scale-backs and what they decided), for people checking what happened.
 * 404 for a playbook the policy does not name; `notify-only` playbooks have no target to list.
 */
export async function remediations(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  const logger = invocationLogger(context, 'remediations.list');
  try {
    const deps = getDeps();
    authorize(request, { authEnabled: deps.settings.authEnabled }, ROLES.read);
    const problems: string[] = [];
    const name = request.query.get('playbook');
    if (!name || !NAME.test(name))
      problems.push('playbook: the name of a playbook of the policy is required');
    const limitRaw = request.query.get('limit');
    const limit = limitRaw ? Number(limitRaw) : 20;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY)
      problems.push(`limit: an integer from 1 to ${MAX_HISTORY}`);
    if (problems.length > 0)
      throw new ValidationError(`invalid remediation query: ${problems.join('; ')}`, problems);
    const playbook = deps.policy.playbooks.find((p) => p.name === name);
    if (!playbook) throw new NotFoundError(`the policy has no playbook ${name}`);
    if (playbook.action === 'notify-only')
      throw new ValidationError(`playbook ${name} is notify-only: it changes no resource`, [
        'playbook: a scaling playbook (notify-only runs are per alert)',
      ]);
    await deps.ready();
    const target = playbookTarget(playbook.target);
    const runs = await deps.runs(logger).runsForTarget(REMEDIATION_KIND, target, { limit });
    return jsonResponse(
      200,
      {
        playbook: playbook.name,
        action: playbook.action,
        target,
        count: runs.length,
        runs: runs.map(describeRun),
      },
      context.invocationId,
    );
  } catch (error) {
    return errorResponse(error, context.invocationId, logger);
  }
}

app.timer('remediationScaleBack', {
  schedule: getDeps().policy.schedules.remediationScaleBack,
  handler: remediationScaleBack,
});
app.http('remediations', {
  methods: ['GET'],
  authLevel: 'function',
  route: 'remediations',
  handler: remediations,
});
