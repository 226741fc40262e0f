/**
 * Stored reports of the scheduled maintenance checks, as a port: each run of a check writes one
 * report; people and pipelines read the latest, one by id, or a check's history.
 */

/** `20260101T053000123Z-1a2b3c`: a report id, the instant its check started and a random suffix. */
export const REPORT_ID = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z-[0-9a-f]{6}$/;

/** `ok`: nothing to do; `warning`: needs a person soon; `failed`: needs a person now; `unknown`: the data could not be read (never taken as ok). */

export type FindingStatus = 'ok' | 'warning' | 'failed' | 'unknown';

export interface Finding {
  /** What it is about: a resource id, a quota (`Microsoft.Compute/westeurope/cores`), `runtime/node`, a secret (`vaults/kv/secrets/name`). */
  subject: string;
  /** A stable code of what was found (`backup.policy`, `drill.restoreRequest`, `quota.usage`...). */
  code: string;
  status: FindingStatus;
  title: string;
  detail: string;
  /** Names, numbers, times: never a secret value. */
  facts: Record<string, string | number | boolean | null>;
  /** What a person does about it, and the runbook that says how. */
  action?: { summary: string; runbook?: string };
  /** Structured evidence (a restore request the drill validated, the versions offered...). */
  evidence?: Record<string, unknown>;
}

export type ReportStatus = 'ok' | 'attention' | 'failed';

export interface ReportSummary {
  id: string;
  check: string;
  status: ReportStatus;
  /** Whether someone was (or should have been) told. */
  needsPerson: boolean;
  summary: string;
  counts: Record<FindingStatus, number>;
  startedOn: string;
  finishedOn: string;
  trigger: 'timer' | 'manual';
  actor: string;
  correlationId: string;
}

export interface CheckReport extends ReportSummary {
  findings: Finding[];
  /** Findings left out because the report would not fit (the worst are kept). */
  omittedFindings: number;
}

export interface ReportStore {
  save(report: CheckReport, options?: { abortSignal?: AbortSignal }): Promise<void>;
  /** The newest report of a check, or undefined. */
  latest(check: string, options?: { abortSignal?: AbortSignal }): Promise<CheckReport | undefined>;
  get(check: string, id: string, options?: { abortSignal?: AbortSignal }): Promise<CheckReport | undefined>;
  /** Summaries, newest first. */
  list(check: string, options: { limit: number; abortSignal?: AbortSignal }): Promise<ReportSummary[]>;
}
