/**
 * Quota headroom: usage against limit for the quotas the policy names (the Quota API), a warning at
 * the policy's threshold, and what to request: an adjustable quota (`isQuotaApplicable`) through the
 * Quota API or the portal, any other through a support request. A quota the API does not answer, or
 * answers without a usage or a limit, is unknown: never ok.
 */
import type { ChecksPolicy, QuotaHeadroomCheck } from '../config/policy';
import type { QuotaReader, QuotaView } from '../ports/inventory';
import type { Finding } from '../ports/reports';
import { RUNBOOKS, runbookLink, unreadable } from './report';

export interface QuotaHeadroomDeps {
  quotas: QuotaReader;
  checks: ChecksPolicy;
  abortSignal?: AbortSignal;
}

/** The limit to ask for: one at which today's usage is `targetPercent` of it, and more than today's limit. */
export function suggestedLimit(usage: number, limit: number, targetPercent: number): number {
  return Math.max(limit + 1, Math.ceil((usage * 100) / targetPercent));
}

export async function checkQuotaHeadroom(
  check: QuotaHeadroomCheck,
  deps: QuotaHeadroomDeps,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const scope of check.quotas) {
    const where = `${scope.provider}/${scope.location}`;
    let views: QuotaView[];
    try {
      views = await deps.quotas.listQuotas(scope, { abortSignal: deps.abortSignal });
    } catch (error) {
      for (const name of scope.names)
        findings.push(
          unreadable(
            `${where}/${name}`,
            'quota.usage',
            `the ${scope.provider} quotas in ${scope.location}`,
            error,
          ),
        );
      continue;
    }
    for (const name of scope.names) {
      const view = views.find((v) => v.name.toLowerCase() === name.toLowerCase());
      findings.push(quotaFinding(check, scope, name, view, deps.checks));
    }
  }
  return findings;
}

function quotaFinding(
  check: QuotaHeadroomCheck,
  scope: QuotaHeadroomCheck['quotas'][number],
  name: string,
  view: QuotaView | undefined,
  checks: ChecksPolicy,
): Finding {
  const subject = `${scope.provider}/${scope.location}/${name}`;
  const label = view?.displayName ?? name;
  if (!view || view.usage === undefined || view.limit === undefined) {
    return {
      subject,
      code: 'quota.usage',
      status: 'unknown',
      title: `${label} in ${scope.location}: no usage or limit`,
      detail: view
        ? `The Quota API answered ${name} without ${view.usage === undefined ? 'a usage' : 'a limit'}: its headroom is unknown.`
        : `The Quota API answered no quota named ${name} for ${scope.provider} in ${scope.location}: check the name in the policy (az quota usage list --scope subscriptions/${scope.subscriptionId}/providers/${scope.provider}/locations/${scope.location}).`,
      facts: { provider: scope.provider, location: scope.location, quota: name },
    };
  }
  const percent =
    view.limit === 0 ? (view.usage > 0 ? Number.POSITIVE_INFINITY : 0) : (view.usage * 100) / view.limit;
  const status =
    percent >= check.criticalAtPercent ? 'failed' : percent >= check.warnAtPercent ? 'warning' : 'ok';
  const shown = Number.isFinite(percent) ? `${Math.round(percent * 10) / 10}%` : 'over a zero limit';
  const facts = {
    provider: scope.provider,
    location: scope.location,
    quota: name,
    usage: view.usage,
    limit: view.limit,
    percent: Number.isFinite(percent) ? Math.round(percent * 10) / 10 : null,
    unit: view.unit ?? null,
    adjustable: view.adjustable ?? null,
    warnAtPercent: check.warnAtPercent,
    criticalAtPercent: check.criticalAtPercent,
  };
  if (status === 'ok') {
    return {
      subject,
      code: 'quota.usage',
      status,
      title: `${label} in ${scope.location}: ${view.usage} of ${view.limit} (${shown})`,
      detail: `Usage is below ${check.warnAtPercent}% of the limit.`,
      facts,
    };
  }
  const wanted = suggestedLimit(view.usage, view.limit, check.requestTargetPercent);
  const scopePath = `subscriptions/${scope.subscriptionId}/providers/${scope.provider}/locations/${scope.location}`;
  const request =
    view.adjustable === true
      ? `Request a limit of ${wanted} for ${name} in ${scope.location}: the portal (Quotas > My quotas), or the Quota API (az quota update --resource-name ${name} --scope ${scopePath} --limit-object value=${wanted}).`
      : `${name} cannot be raised through the Quota API${view.adjustable === false ? '' : ' (the API did not say it can)'}: open a support request (Help + support > Service and subscription limits (quotas)) for ${view.unit ?? ''} ${name} in ${scope.location}, asking for a limit of ${wanted}.`;
  return {
    subject,
    code: 'quota.usage',
    status,
    title: `${label} in ${scope.location}: ${view.usage} of ${view.limit} (${shown})`,
    detail: `Usage is at ${shown} of the limit (${status === 'failed' ? `critical at ${check.criticalAtPercent}%` : `warning at ${check.warnAtPercent}%`}): a new stamp or a scale-out may not fit.`,
    facts: { ...facts, suggestedLimit: wanted },
    action: { summary: request.replace(/\s+/g, ' '), runbook: runbookLink(checks, RUNBOOKS.quotaIncrease) },
  };
}
