import { ValidationError } from '../core/errors';
import type { Logger } from '../core/logging';
import { parseIsoTime } from '../core/time';
import type { Clock } from '../ports/clock';
import type { AuditLog, AuditRecord, RejectionBucket, RejectionLog } from '../ports/state';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const DEFAULT_WINDOW_MS = DAY_MS;
export const MAX_AUDIT_LIMIT = 1000;
/** Longest audit window one query may span (the store reads one partition per day). */
export const MAX_AUDIT_WINDOW_DAYS = 366;
export const MAX_REJECTION_WINDOW_DAYS = 31;
/** Times further than this from now are refused: no audit record lies there. */
const MAX_DISTANCE_MS = 100 * 366 * DAY_MS;
const MAX_TARGET = 512;
const SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;

export interface AuditQueryDeps {
  audit: AuditLog;
  clock: Clock;
  logger: Logger;
}

export interface RejectionQueryDeps {
  rejections: RejectionLog;
  clock: Clock;
  logger: Logger;
}

export interface AuditQueryParams {
  since: Date;
  until?: Date;
  target?: string;
  limit: number;
}

/**
 * Reads the audit query parameters: `since` (default 24 hours before `now`), `until`, `target` (a
 * target as audited, e.g. `vaults/contoso-kv/secrets/cosmos-key`, or a bare secret name such as
 * `cosmos-key`), `limit` (1-1000, default 200). Every bound is checked before any work: a window of
 * at most 366 days, times within a century of now. Throws a `ValidationError` listing every problem.
 */
export function parseAuditQuery(params: URLSearchParams, now: Date): AuditQueryParams {
  const problems: string[] = [];
  const since = timeParam(params, 'since', now, problems) ?? new Date(now.getTime() - DEFAULT_WINDOW_MS);
  const until = timeParam(params, 'until', now, problems);
  const target = params.get('target')?.trim() || undefined;
  if (target !== undefined && target.length > MAX_TARGET)
    problems.push(`target: at most ${MAX_TARGET} characters`);
  const limitRaw = params.get('limit');
  const limit = limitRaw ? Number(limitRaw) : 200;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_AUDIT_LIMIT)
    problems.push(`limit: must be an integer from 1 to ${MAX_AUDIT_LIMIT}`);
  const end = until ?? now;
  if (until && since > until) problems.push('since: must not be after until');
  else if (end.getTime() - since.getTime() > MAX_AUDIT_WINDOW_DAYS * DAY_MS) {
    problems.push(`since, until: at most ${MAX_AUDIT_WINDOW_DAYS} days apart (until defaults to now)`);
  }
  if (problems.length > 0) throw new ValidationError(`invalid audit query: ${problems.join('; ')}`, problems);
  return { since, until, target, limit };
}

/**
 * Audit records, oldest first. A bare secret name as `target` matches that secret in every vault
 * (`vaults/*` `/secrets/{name}`, case-insensitive as Key Vault names are). Needs Table data read.
 */
export async function queryAudit(
  deps: AuditQueryDeps,
  query: AuditQueryParams,
  options: { abortSignal?: AbortSignal } = {},
): Promise<AuditRecord[]> {
  const bareSecret =
    query.target !== undefined && !query.target.includes('/') && SECRET_NAME.test(query.target);
  if (!bareSecret) return deps.audit.query(query, options);
  return deps.audit.query({ ...query, target: undefined, targetName: query.target }, options);
}

/**
 * Reads `since` (default 24 hours before now) and `until` (default now) of a rejection query: at most
 * 31 days apart. Throws a `ValidationError` listing every problem.
 */
export function parseRejectionQuery(params: URLSearchParams, now: Date): { since: Date; until: Date } {
  const problems: string[] = [];
  const since = timeParam(params, 'since', now, problems) ?? new Date(now.getTime() - DEFAULT_WINDOW_MS);
  const until = timeParam(params, 'until', now, problems) ?? now;
  if (since > until) problems.push('since: must not be after until');
  else if (until.getTime() - since.getTime() > MAX_REJECTION_WINDOW_DAYS * DAY_MS)
    problems.push(`since, until: at most ${MAX_REJECTION_WINDOW_DAYS} days apart`);
  if (problems.length > 0)
    throw new ValidationError(`invalid rejection query: ${problems.join('; ')}`, problems);
  return { since, until };
}

/** Rejection counters (per hour, kind, source and reason) of a window, oldest hour first. */
export function queryRejections(
  deps: RejectionQueryDeps,
  query: { since: Date; until: Date },
  options: { abortSignal?: AbortSignal } = {},
): Promise<RejectionBucket[]> {
  return deps.rejections.list(query, options);
}

function timeParam(params: URLSearchParams, name: string, now: Date, problems: string[]): Date | undefined {
  const raw = params.get(name);
  if (raw === null || raw === '') return undefined;
  const date = parseIsoTime(raw);
  if (!date) {
    problems.push(
      `${name}: '${raw.slice(0, 40)}' is not an ISO 8601 time with a zone (e.g. 2026-01-01T00:00:00Z)`,
    );
    return undefined;
  }
  if (Math.abs(date.getTime() - now.getTime()) > MAX_DISTANCE_MS) {
    problems.push(`${name}: must be within 100 years of now`);
    return undefined;
  }
  return date;
}
