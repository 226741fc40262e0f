import { odata, type TableClient } from '@azure/data-tables';
import { ValidationError } from '../core/errors';
import { type CheckReport, REPORT_ID, type ReportStore, type ReportSummary } from '../ports/reports';
import { MAX_STRING_PROPERTY_CHARS, parseJson } from './limits';
import { type PurgeOptions, type PurgeResult, purgeLimit, purgeMatching, validDate } from './purge';
import { readEntity, storageCall } from './tables';

const CHECK_NAME = /^[A-Za-z][A-Za-z0-9]{0,63}$/;
/** Body chunks per report at most: 15 x 32 Ki characters stays under the 1 MiB entity limit. */
const MAX_CHUNKS = 15;
const MAX_LIST = 100;

type ReportEntity = {
  partitionKey: string;
  rowKey: string;
  reportId: string;
  status: string;
  startedOn: Date;
  summary: string;
  chunks: number;
} & Record<`body${number}`, string>;

/** The instant a report id names. */
function instantOf(id: string): number {
  const m = REPORT_ID.exec(id);
  if (!m)
    throw new ValidationError(`'${id}' is not a report id`, [
      'id: a report id such as 20260101T053000000Z-1a2b3c',
    ]);
  const [, y, mo, d, h, mi, s, ms] = m;
  return Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), Number(ms));
}

/** Newest first: the row key counts down from the largest 13-digit millisecond value. */
function rowKey(id: string): string {
  return `${String(9_999_999_999_999 - instantOf(id)).padStart(13, '0')}_${id}`;
}

function checkName(check: string): string {
  if (!CHECK_NAME.test(check))
    throw new ValidationError(`'${check}' is not a check name`, ['check: a check name']);
  return check;
}

/**
 * Check reports on a Table: one partition per check, newest first (the row key counts down from the
 * report's time). A report's JSON is cut into string properties of 32 Ki characters (the property
 * limit), at most 15 of them; `runCheck` bounds the findings so that a report fits. Needs `Storage
 * Table Data Contributor`. Storage failures surface mapped (`TransientError` for 429 / 5xx / network).
 */
export class TableReportStore implements ReportStore {
  constructor(private readonly table: TableClient) {}

  async save(report: CheckReport, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    const { findings: _findings, omittedFindings: _omitted, ...summary } = report;
    const json = JSON.stringify(report);
    const chunks: string[] = [];
    for (let i = 0; i < json.length; i += MAX_STRING_PROPERTY_CHARS)
      chunks.push(json.slice(i, i + MAX_STRING_PROPERTY_CHARS));
    if (chunks.length > MAX_CHUNKS) {
      throw new ValidationError(`report ${report.id} is too large to store (${json.length} characters)`, [
        `the report's JSON must stay under ${MAX_CHUNKS * MAX_STRING_PROPERTY_CHARS} characters`,
      ]);
    }
    const entity: ReportEntity = {
      partitionKey: checkName(report.check),
      rowKey: rowKey(report.id),
      reportId: report.id,
      status: report.status,
      startedOn: new Date(report.startedOn),
      summary: JSON.stringify(summary),
      chunks: chunks.length,
      ...Object.fromEntries(chunks.map((c, i) => [`body${i}`, c])),
    };
    await storageCall(`store check report ${report.id}`, () =>
      this.table.upsertEntity(entity, 'Replace', { abortSignal: options.abortSignal }),
    );
  }

  async get(
    check: string,
    id: string,
    options: { abortSignal?: AbortSignal } = {},
  ): Promise<CheckReport | undefined> {
    const entity = await readEntity<ReportEntity>(
      this.table,
      checkName(check),
      rowKey(id),
      `read check report ${id}`,
      options.abortSignal,
    );
    return entity ? body(entity) : undefined;
  }

  async latest(check: string, options: { abortSignal?: AbortSignal } = {}): Promise<CheckReport | undefined> {
    const partition = checkName(check);
    return storageCall(`read the latest ${check} report`, async () => {
      const pages = this.table
        .listEntities<ReportEntity>({
          queryOptions: { filter: odata`PartitionKey eq ${partition}` },
          abortSignal: options.abortSignal,
        })
        .byPage({ maxPageSize: 1 });
      for await (const page of pages) {
        const first = page[0];
        return first ? body(first) : undefined;
      }
      return undefined;
    });
  }

  async list(check: string, options: { limit: number; abortSignal?: AbortSignal }): Promise<ReportSummary[]> {
    const partition = checkName(check);
    if (!Number.isInteger(options.limit) || options.limit < 1 || options.limit > MAX_LIST)
      throw new ValidationError('invalid limit', [`limit: an integer from 1 to ${MAX_LIST}`]);
    return storageCall(`list ${check} reports`, async () => {
      const out: ReportSummary[] = [];
      const pages = this.table
        .listEntities<Pick<ReportEntity, 'summary'>>({
          queryOptions: { filter: odata`PartitionKey eq ${partition}`, select: ['summary'] },
          abortSignal: options.abortSignal,
        })
        .byPage({ maxPageSize: options.limit });
      for await (const page of pages) {
        for (const row of page)
          if (out.length < options.limit) out.push(parseJson(row.summary) as ReportSummary);
        break;
      }
      return out;
    });
  }

  /** Deletes reports that started before `cutoff` (retention: reports are kept as long as the audit). */
  async purgeBefore(cutoff: Date, options: PurgeOptions = {}): Promise<PurgeResult> {
    const limit = purgeLimit(options);
    const before = validDate(cutoff, 'cutoff');
    return purgeMatching<{ startedOn: Date }>(
      this.table,
      'check reports purge',
      {
        filter: odata`startedOn lt ${before}`,
        select: ['PartitionKey', 'RowKey', 'startedOn'],
        accept: (row) => row.startedOn instanceof Date && row.startedOn.getTime() < before.getTime(),
      },
      { limit, abortSignal: options.abortSignal },
    );
  }
}

function body(entity: ReportEntity): CheckReport {
  let json = '';
  for (let i = 0; i < entity.chunks; i++) json += entity[`body${i}`] ?? '';
  return parseJson(json) as CheckReport;
}
