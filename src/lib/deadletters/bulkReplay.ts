/**
 * Bulk replay by filter, as a run of the engine (`POST /api/deadletters/replay`): `plan` counts
 * what the filter matches and what would be sent (a dry run stops there and reports it); `replay`
 * streams the archive a chunk at a time (a keyset page, never the whole set), sends each chunk in
 * `ServiceBusMessageBatch`es through `replayRecords` (each record's attempt recorded before the
 * send, so a crash resends the same message ids), records its progress (continuation, counts,
 * batch fill) and waits as the rate limit says before the next chunk; `report` announces the
 * outcome once. A chunk re-run after a crash skips what this run already sent, counting it as
 * replayed, and sees again the records this run moved out of a `state` filter (`replaying`,
 * `replayed`), so a crash between the marks and the send loses none of them.
 */
import { type DeadLetterEntity, deadLetterChannels, type Policy } from '../config/policy';
import { TransientError, ValidationError } from '../core/errors';
import { stableHash } from '../core/ids';
import type { Logger } from '../core/logging';
import { runOnce } from '../core/once';
import { sendToChannelsOnce } from '../notify/sendOnce';
import type { DeadLetterFilter, DeadLetterRecord } from '../ports/deadLetters';
import type { Notifier } from '../ports/notifier';
import type { AuditLog, IdempotencyStore } from '../ports/state';
import type { RunEngine, RunKindDefinition, StepContext, StepResult } from '../runs';
import type { JsonObject, Run } from '../runs/types';
import { entityOf } from './operate';
import { type ReplayDeps, replayRecords } from './replay';
import { replayTargetOf } from './replayMessage';

export const BULK_REPLAY_KIND = 'deadletter-replay';
/** Messages per second when the request names no rate, and the most it may name. */
export const DEFAULT_RATE = 1000;
export const MAX_RATE = 5000;
/**
 * Records per chunk: the archive's largest page. A chunk is one step execution; the wait after it
 * is `chunk ÷ rate`, at most a second (the engine's due tolerance: the sandbox clock need not move).
 */
export const MAX_CHUNK = 1000;
/** Most records a plan counts before it says "at least". */
const PLAN_MAX_SCAN = 200_000;

export interface BulkReplayDeps extends Omit<ReplayDeps, 'policy'> {
  policy: Policy;
  notifier: Notifier;
  idempotency: IdempotencyStore;
  audit: AuditLog;
  environment: string;
  idempotencyTtlMs: number;
  claimLeaseMs: number;
}

export interface BulkReplayInput extends JsonObject {
  entity: string;
  filter: { reason?: string; from?: string; to?: string; q?: string; state?: string };
  to: string | null;
  ratePerSecond: number;
}

interface Progress extends JsonObject {
  continuation: string | null;
  chunks: number;
  replayed: number;
  skipped: number;
  batches: number;
  bytes: number;
  capacity: number;
  skippedIds: string[];
}

function inputOf(run: Readonly<Run>): BulkReplayInput {
  return run.input as BulkReplayInput;
}

/** The archive filter of a run's input (its entity always set). */
export function filterOf(input: BulkReplayInput): DeadLetterFilter {
  const f = input.filter;
  return {
    entity: input.entity,
    ...(f.reason ? { reason: f.reason } : {}),
    ...(f.from ? { from: new Date(f.from) } : {}),
    ...(f.to ? { to: new Date(f.to) } : {}),
    ...(f.q ? { q: f.q } : {}),
    ...(f.state ? { state: f.state as DeadLetterFilter['state'] } : {}),
  };
}

/** What this run sent already: a chunk re-run after a crash counts it replayed, sends it no more. */
function sentByRun(record: DeadLetterRecord, runId: string): boolean {
  return record.lastReplay?.runId === runId && record.lastReplay.status === 'sent';
}

/**
 * A chunk's records: the filter's, plus those this run itself moved out of the filter's `state`
 * (marked `replaying` or `replayed` by an execution that died before recording its progress). The
 * state is checked here rather than in the archive query so the keyset page re-read after a crash
 * still holds them: filtered by the archive, a record marked `replaying` and not sent yet would
 * never be sent, and one sent would never be counted.
 */
function chunkRecords(
  records: DeadLetterRecord[],
  state: string | undefined,
  runId: string,
): DeadLetterRecord[] {
  if (state === undefined) return records;
  return records.filter((r) => r.state === state || r.lastReplay?.runId === runId);
}

/** The bulk replay run kind (registered in `engine()` of the composition root). */
export function bulkReplayKind(deps: (logger: Logger) => BulkReplayDeps): RunKindDefinition {
  const plan = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    const d = deps(ctx.logger);
    const input = inputOf(run);
    const entity = entityOf(d, input.entity);
    const target = replayTargetOf(entity, input.to ?? undefined);
    let matched = 0;
    let replayable = 0;
    let scanned = 0;
    const byReason: Record<string, number> = {};
    const sample: string[] = [];
    let continuation: string | undefined;
    do {
      const page = await d.archive.list(
        filterOf(input),
        { limit: MAX_CHUNK, ...(continuation ? { continuation } : {}) },
        { abortSignal: ctx.abortSignal },
      );
      for (const record of page.records) {
        matched += 1;
        if (record.state === 'discarded') continue;
        replayable += 1;
        const reason = record.deadLetterReason ?? '(none)';
        byReason[reason] = (byReason[reason] ?? 0) + 1;
        if (sample.length < 20) sample.push(record.id);
      }
      scanned += page.scanned;
      continuation = page.continuation;
    } while (continuation && scanned < PLAN_MAX_SCAN);
    return {
      status: 'done',
      output: {
        matched,
        replayable,
        complete: continuation === undefined,
        byReason,
        sample,
        target: target.entity,
        ...(target.replayTo ? { replayTo: target.replayTo } : {}),
        ratePerSecond: input.ratePerSecond,
      },
    };
  };

  const replay = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    if (ctx.dryRun) return { status: 'skip' };
    const d = deps(ctx.logger);
    const input = inputOf(run);
    const entity: DeadLetterEntity = entityOf(d, input.entity);
    const before = (run.steps[run.currentStep]?.output as Progress | undefined) ?? {
      continuation: null,
      chunks: 0,
      replayed: 0,
      skipped: 0,
      batches: 0,
      bytes: 0,
      capacity: 0,
      skippedIds: [],
    };
    const chunk = Math.min(MAX_CHUNK, input.ratePerSecond);
    const { state, ...unstated } = filterOf(input);
    const page = await d.archive.list(
      unstated,
      { limit: chunk, ...(before.continuation ? { continuation: before.continuation } : {}) },
      { abortSignal: ctx.abortSignal },
    );
    const records = chunkRecords(page.records, state, run.id);
    const resent = records.filter((r) => sentByRun(r, run.id)).length;
    const discarded = records.filter((r) => r.state === 'discarded').length;
    const todo = records.filter((r) => r.state !== 'discarded' && !sentByRun(r, run.id));
    const started = Date.now();
    const result =
      todo.length > 0
        ? await replayRecords(
            entity,
            {
              records: todo,
              actor: run.actor ?? 'system:deadletters',
              runId: run.id,
              ...(input.to ? { to: input.to } : {}),
            },
            d,
            { abortSignal: ctx.abortSignal },
          )
        : undefined;
    const skipped = (result?.results ?? []).filter((r) => r.status === 'skipped');
    const progress: Progress = {
      continuation: page.continuation ?? null,
      chunks: before.chunks + 1,
      replayed:
        before.replayed + resent + (result?.results.filter((r) => r.status === 'replayed').length ?? 0),
      skipped: before.skipped + skipped.length + discarded,
      batches: before.batches + (result?.report?.batches ?? 0),
      bytes: before.bytes + (result?.report?.bytes ?? 0),
      capacity: before.capacity + (result?.report?.capacity ?? 0),
      skippedIds: [...before.skippedIds, ...skipped.map((s) => s.id)].slice(0, 50),
    };
    if (!page.continuation) return { status: 'done', output: progress };
    // The rate limit: the next chunk is due when this one's share of the second is over.
    const delayMs = Math.max(
      0,
      Math.round((todo.length / input.ratePerSecond) * 1000) - (Date.now() - started),
    );
    return { status: 'wait', delayMs, output: progress };
  };

  const report = async (run: Readonly<Run>, ctx: StepContext): Promise<StepResult> => {
    const d = deps(ctx.logger);
    const input = inputOf(run);
    const entity = entityOf(d, input.entity);
    const planned = run.steps.find((s) => s.name === 'plan')?.output as Record<string, unknown> | undefined;
    const progress = run.steps.find((s) => s.name === 'replay')?.output as Progress | undefined;
    const summary = {
      entity: entity.name,
      dryRun: ctx.dryRun,
      matched: planned?.matched ?? 0,
      replayable: planned?.replayable ?? 0,
      replayed: progress?.replayed ?? 0,
      skipped: progress?.skipped ?? 0,
      batches: progress?.batches ?? 0,
      fillRatio: progress && progress.capacity > 0 ? progress.bytes / progress.capacity : null,
      target: planned?.target ?? null,
    };
    const key = `${ctx.dryRun ? 'dry-run|' : ''}deadletter-replay-report|${run.id}`;
    const channels = deadLetterChannels(d.policy, entity).map((c) => c.name);
    await runOnce(
      d.idempotency,
      key,
      {
        owner: `${key}:${ctx.now.toISOString()}`,
        ttlMs: d.idempotencyTtlMs,
        leaseMs: d.claimLeaseMs,
        busyMessage: `the report of bulk replay ${run.id} is being sent by another attempt`,
        summarize: () => summary,
      },
      async (once) => {
        const results = await sendToChannelsOnce(
          {
            id: stableHash('deadletter-replay-report', run.id),
            type: 'com.stampkeeper.deadletters.replayed',
            subject: `deadletters/${entity.name}`,
            severity: 'info',
            title: `${ctx.dryRun ? 'Dry run: ' : ''}${summary.replayed} dead letters of ${entity.path} replayed`,
            summary: ctx.dryRun
              ? `A dry run of a bulk replay of ${entity.path}: ${summary.replayable} of ${summary.matched} matching dead letters would be sent to ${String(summary.target)}.`
              : `Bulk replay ${run.id} of ${entity.path} sent ${summary.replayed} dead letters to ${String(summary.target)} in ${summary.batches} batches; ${summary.skipped} skipped.`,
            facts: {
              Entity: entity.name,
              Run: run.id,
              Matched: String(summary.matched),
              Replayed: String(summary.replayed),
              Skipped: String(summary.skipped),
              Environment: d.environment,
            },
            correlationId: run.correlationId,
            time: ctx.now,
            data: summary,
          },
          channels,
          d,
          once,
          { abortSignal: ctx.abortSignal },
        );
        const transient = results.filter((r) => r.status === 'failed' && r.retryable);
        if (transient.length > 0)
          throw new TransientError(
            `reporting to ${transient.map((r) => r.channel).join(', ')} failed; retried`,
          );
        await d.audit.append({
          id: stableHash('deadletter-replay-report-audit', run.id),
          time: ctx.now,
          actor: run.actor ?? 'system:deadletters',
          action: 'deadletters.bulkReplay',
          target: `deadletters/${entity.name}`,
          outcome: 'succeeded',
          correlationId: run.correlationId,
          runId: run.id,
          after: summary,
        });
        return results;
      },
    );
    return { status: 'done', output: summary };
  };

  return {
    kind: BULK_REPLAY_KIND,
    version: 1,
    // One bulk replay per entity at a time: two would send the same records twice.
    target: { exclusive: true },
    deadlineMs: 2 * 86_400_000,
    steps: [
      { name: 'plan', run: plan },
      { name: 'replay', run: replay },
      { name: 'report', run: report },
    ],
  };
}

/** What a bulk replay request may say, checked (every problem listed). */
export function parseBulkReplay(
  body: Record<string, unknown>,
  deps: Pick<ReplayDeps, 'policy'>,
  parseFilter: (input: Record<string, unknown>, problems: string[]) => DeadLetterFilter,
): { input: BulkReplayInput; dryRun: boolean } {
  const problems: string[] = [];
  const allowed = ['filter', 'to', 'ratePerSecond', 'dryRun'];
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length > 0)
    problems.push(`${unknown.join(', ')}: not allowed (allowed: ${allowed.join(', ')})`);
  let filter: DeadLetterFilter = {};
  const raw = body.filter;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    problems.push('filter: an object of entity (required), reason, from, to, q, state');
  else {
    const keys = ['entity', 'reason', 'from', 'to', 'q', 'state'];
    const extra = Object.keys(raw).filter((k) => !keys.includes(k));
    if (extra.length > 0) problems.push(`filter.${extra.join(', filter.')}: not allowed`);
    filter = parseFilter(raw as Record<string, unknown>, problems);
    if (filter.entity === undefined && !problems.some((p) => p.startsWith('entity')))
      problems.push('filter.entity: required (a bulk replay is of one entity)');
  }
  if (body.to !== undefined && (typeof body.to !== 'string' || body.to.length > 260))
    problems.push('to: a queue or topic among the entity replay targets');
  const rate = body.ratePerSecond ?? DEFAULT_RATE;
  if (!Number.isInteger(rate) || (rate as number) < 1 || (rate as number) > MAX_RATE)
    problems.push(`ratePerSecond: an integer from 1 to ${MAX_RATE}`);
  if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') problems.push('dryRun: true or false');
  if (problems.length === 0 && filter.entity) {
    try {
      replayTargetOf(entityOf(deps, filter.entity), typeof body.to === 'string' ? body.to : undefined);
    } catch (error) {
      if (error instanceof ValidationError) problems.push(...error.problems);
      else throw error;
    }
  }
  if (problems.length > 0) throw new ValidationError(`invalid bulk replay: ${problems.join('; ')}`, problems);
  return {
    input: {
      entity: filter.entity!,
      filter: {
        ...(filter.reason ? { reason: filter.reason } : {}),
        ...(filter.from ? { from: filter.from.toISOString() } : {}),
        ...(filter.to ? { to: filter.to.toISOString() } : {}),
        ...(filter.q ? { q: filter.q } : {}),
        ...(filter.state ? { state: filter.state } : {}),
      },
      to: typeof body.to === 'string' ? body.to : null,
      ratePerSecond: rate as number,
    },
    dryRun: body.dryRun === true,
  };
}

/** Starts a bulk replay run (409 when one of the entity is under way: `ifActive: 'refuse'`). */
export async function startBulkReplay(
  engine: RunEngine,
  request: { input: BulkReplayInput; dryRun: boolean; actor: string; correlationId: string },
): Promise<Run> {
  const { run } = await engine.startRun(BULK_REPLAY_KIND, {
    target: `deadletters/${request.input.entity}`,
    input: request.input,
    dryRun: request.dryRun,
    actor: request.actor,
    correlationId: request.correlationId,
    ifActive: 'refuse',
  });
  return run;
}
