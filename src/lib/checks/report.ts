/**
 * The shape every maintenance check reports in: findings with a status, turned into one report
 * whose status is the worst of them. A finding whose data could not be read is `unknown` and counts
 * as failed: a check never reports ok on what it did not see.
 */
import type { ChecksPolicy } from '../config/policy';
import { isStampkeeperError } from '../core/errors';
import { redactText } from '../core/redact';
import type { Finding, FindingStatus, ReportStatus } from '../ports/reports';

/** The runbooks under docs/runbooks/, by what they cover. */
export const RUNBOOKS = {
  cosmosRestore: 'cosmos-db-restore.md',
  quotaIncrease: 'quota-increase.md',
  deadLetters: 'dead-letters.md',
  haltedRotation: 'halted-rotation.md',
} as const;

/** The link a report gives to a runbook: under the policy's `runbookBaseUrl`, else `docs/runbooks/`. */
export function runbookLink(checks: ChecksPolicy, runbook: string): string {
  return `${checks.runbookBaseUrl ?? 'docs/runbooks/'}${runbook}`;
}

const ORDER: FindingStatus[] = ['failed', 'unknown', 'warning', 'ok'];

/** Findings worst first, in a stable order otherwise. */
export function worstFirst(findings: Finding[]): Finding[] {
  return findings
    .map((f, i) => ({ f, i }))
    .sort((a, b) => ORDER.indexOf(a.f.status) - ORDER.indexOf(b.f.status) || a.i - b.i)
    .map(({ f }) => f);
}

/** The report's status: `failed` when anything failed or could not be read, `attention` for a warning, else `ok`. */
export function reportStatus(findings: Finding[]): ReportStatus {
  if (findings.some((f) => f.status === 'failed' || f.status === 'unknown')) return 'failed';
  if (findings.some((f) => f.status === 'warning')) return 'attention';
  return 'ok';
}

export function countFindings(findings: Finding[]): Record<FindingStatus, number> {
  const counts: Record<FindingStatus, number> = { ok: 0, warning: 0, failed: 0, unknown: 0 };
  for (const f of findings) counts[f.status] += 1;
  return counts;
}

/**
 * A finding for data that could not be read: its status is `unknown` (never ok), and its detail
 * says what failed, with the error's code and redacted message (never a value).
 */
export function unreadable(subject: string, code: string, what: string, error: unknown): Finding {
  const known = isStampkeeperError(error);
  const reason = known
    ? `${error.code}: ${error.message}`
    : error instanceof Error
      ? error.message
      : String(error);
  return {
    subject,
    code,
    status: 'unknown',
    title: `Could not read ${what}`,
    detail: redactText(`${what} could not be read, so nothing about it is known: ${reason}`),
    facts: {
      error: known ? error.code : 'UnexpectedError',
      retryable: known ? error.retryable : false,
    },
    action: {
      summary:
        known && error.code === 'Forbidden'
          ? "Give the app's identity read access to it (docs/deploy.md), then run the check again."
          : 'Find out why it cannot be read, then run the check again.',
    },
  };
}

/** ISO time without milliseconds, as reports show times. */
export function isoSeconds(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}
