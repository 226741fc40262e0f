/**
 * The dead-letter report (timer, `schedules.deadLetterReport`): per policy entity, the depth of its
 * dead-letter queue and its growth over the last hour from Azure Monitor (`DeadletteredMessages`
 * of the namespace, dimension `EntityName`: a queue, or a topic summing its subscriptions, as the
 * metric is defined), and what the archive took in per hour and reason. Alerts held back by the
 * rate limit go out here when due (a storm that stopped still gets its last counts). Entities whose
 * queue grew are reported to their channels, once per entity and hour; the rest is logged.
 */
import { type DeadLetterEntity, deadLetterChannels } from '../config/policy';
import { TransientError } from '../core/errors';
import { stableHash } from '../core/ids';
import { runOnce } from '../core/once';
import { sendToChannelsOnce } from '../notify/sendOnce';
import type { MetricsReader } from '../ports/monitoring';
import { type AlertDeps, alertIfDue } from './alerts';

export interface ReportDeps extends AlertDeps {
  metrics: MetricsReader;
}

export interface EntityReport {
  entity: string;
  path: string;
  /** From Azure Monitor: the last value of the hour, and last minus first (undefined: no data or no region). */
  depth?: number;
  growth?: number;
  /** Why Monitor could not say (no region in the policy, an error). */
  metricsProblem?: string;
  /** Archived in the last 24 hours, per reason. */
  archived24h: number;
  byReason: Record<string, number>;
  alert: string;
}

const HOUR = 3_600_000;
const METRIC = 'DeadletteredMessages';

/** Depth and growth of one entity from the namespace's metric (one series of its EntityName). */
async function depthOf(
  entity: DeadLetterEntity,
  deps: ReportDeps,
  now: Date,
): Promise<Pick<EntityReport, 'depth' | 'growth' | 'metricsProblem'>> {
  if (!entity.region) return { metricsProblem: 'no region in the policy: Monitor not read' };
  const name = 'queue' in entity.source ? entity.source.queue : entity.source.topic;
  try {
    const result = await deps.metrics.readMetrics({
      region: entity.region,
      resourceIds: [entity.namespaceId],
      namespace: 'Microsoft.ServiceBus/namespaces',
      metrics: [METRIC],
      window: { start: new Date(now.getTime() - HOUR), end: now },
      interval: 'PT5M',
      aggregations: ['Average'],
      filter: [{ dimension: 'EntityName', values: [name] }],
    });
    const series = result.series.find(
      (s) => (s.dimensions.entityname ?? s.dimensions.EntityName ?? '').toLowerCase() === name.toLowerCase(),
    );
    const values = (series?.points ?? [])
      .map((p) => p.values.Average)
      .filter((v): v is number => typeof v === 'number');
    if (values.length === 0) return { metricsProblem: 'no data in the last hour' };
    return { depth: values.at(-1)!, growth: values.at(-1)! - values[0]! };
  } catch (error) {
    if (error instanceof TransientError) throw error;
    return { metricsProblem: error instanceof Error ? error.message : String(error) };
  }
}

/** Reports every entity of the policy (see the header). */
export async function reportDeadLetters(
  deps: ReportDeps,
  context: { correlationId: string },
): Promise<EntityReport[]> {
  const now = deps.clock.now();
  const reports: EntityReport[] = [];
  for (const entity of deps.policy.deadLetters) {
    const counts = await deps.archive.counts({
      entity: entity.name,
      since: new Date(now.getTime() - 24 * HOUR),
      until: now,
    });
    const byReason: Record<string, number> = {};
    for (const c of counts) byReason[c.reason] = (byReason[c.reason] ?? 0) + c.count;
    const alert = await alertIfDue(entity, deps).catch((error: unknown) => {
      deps.logger.warn('dead-letter alert not sent yet', { entity: entity.name, error: String(error) });
      return { status: 'deferred' as const };
    });
    const report: EntityReport = {
      entity: entity.name,
      path: entity.path,
      ...(await depthOf(entity, deps, now)),
      archived24h: Object.values(byReason).reduce((a, b) => a + b, 0),
      byReason,
      alert: alert.status,
    };
    reports.push(report);
    if ((report.growth ?? 0) > 0) await announceGrowth(entity, report, deps, now, context);
  }
  deps.logger.info('dead-letter report', { entities: reports });
  return reports;
}

async function announceGrowth(
  entity: DeadLetterEntity,
  report: EntityReport,
  deps: ReportDeps,
  now: Date,
  context: { correlationId: string },
): Promise<void> {
  const hour = new Date(Math.floor(now.getTime() / HOUR) * HOUR).toISOString();
  const key = `${deps.dryRun ? 'dry-run|' : ''}deadletter-growth|${entity.name}|${hour}`;
  const channels = deadLetterChannels(deps.policy, entity).map((c) => c.name);
  await runOnce(
    deps.idempotency,
    key,
    {
      owner: `${key}:${context.correlationId}`,
      ttlMs: deps.idempotencyTtlMs,
      leaseMs: deps.claimLeaseMs,
      busyMessage: `the dead-letter report of ${entity.name} is being sent by another attempt`,
    },
    async (once) => {
      if (deps.dryRun) return [];
      const results = await sendToChannelsOnce(
        {
          id: stableHash('deadletter-growth', entity.name, hour),
          type: 'com.stampkeeper.deadletters.growing',
          subject: `deadletters/${entity.name}`,
          severity: entity.alerts.severity,
          title: `Dead-letter queue of ${entity.path} grew by ${report.growth} in the last hour`,
          summary: `The dead-letter queue of ${entity.path} (namespace ${entity.namespace}) holds ${report.depth} messages, ${report.growth} more than an hour ago; the archive took ${report.archived24h} in 24 hours. See GET /api/deadletters?entity=${entity.name}.`,
          facts: {
            Entity: entity.name,
            Path: entity.path,
            Depth: String(report.depth),
            Growth: String(report.growth),
            'Archived (24 h)': String(report.archived24h),
            Owner: entity.owner,
            Environment: deps.environment,
          },
          correlationId: context.correlationId,
          time: now,
          data: { ...report },
        },
        channels,
        deps,
        once,
        {},
      );
      const transient = results.filter((r) => r.status === 'failed' && r.retryable);
      if (transient.length > 0)
        throw new TransientError(
          `reporting to ${transient.map((r) => r.channel).join(', ')} failed; retried`,
        );
      return results;
    },
  );
}
