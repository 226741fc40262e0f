/**
 * The `databases` of a scenario's Cosmos DB account: SQL databases and containers with their
 * provisioned throughput (docs/sandbox.md, "Cosmos DB throughput"). Validated with every problem at
 * once, each with its path.
 *
 * ```yaml
 * cosmosDbAccounts:
 *   - name: stampkeeper-sandbox-cosmos
 *     databases:
 *       - name: orders
 *         throughput: { autoscaleMax: 4000 }      # shared by the containers without their own; optional
 *         containers:
 *           - name: orders
 *             storageGB: 5                        # default 1
 *             throughput: { autoscaleMax: 2000, highest: 4000, partitions: 1 }   # or { manual: 400 }
 * ```
 */
import { minimumOf, type ThroughputSpec } from './cosmosThroughput';

export interface ResolvedCosmosDatabase {
  name: string;
  throughput: ThroughputSpec | undefined;
  containers: Array<{ name: string; storageGB: number; throughput: ThroughputSpec | undefined }>;
}

/** Cosmos DB resource ids: 1-255 characters, none of `/ \ # ?`, no trailing space. */
const NAME = /^[^/\\#?]{0,254}[^/\\#?\s]$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unknownKeys(obj: Record<string, unknown>, allowed: string[], path: string, problems: string[]) {
  for (const k of Object.keys(obj))
    if (!allowed.includes(k))
      problems.push(`${path}.${k}: unknown key (expected one of ${allowed.join(', ')})`);
}

function throughputOf(
  raw: unknown,
  path: string,
  storageGB: number,
  shared: boolean,
  problems: string[],
): ThroughputSpec | undefined {
  if (raw === undefined) return undefined;
  if (!isObject(raw)) {
    problems.push(`${path}: must be a mapping { autoscaleMax } or { manual }`);
    return undefined;
  }
  unknownKeys(raw, ['autoscaleMax', 'manual', 'highest', 'partitions'], path, problems);
  const auto = raw.autoscaleMax;
  const manual = raw.manual;
  if ((auto === undefined) === (manual === undefined)) {
    problems.push(`${path}: give exactly one of autoscaleMax and manual`);
    return undefined;
  }
  const mode = auto !== undefined ? 'autoscale' : 'manual';
  const value = (auto ?? manual) as unknown;
  const step = mode === 'autoscale' ? 1000 : 100;
  if (typeof value !== 'number' || !Number.isInteger(value) || value % step !== 0 || value > 1_000_000) {
    problems.push(
      `${path}.${mode === 'autoscale' ? 'autoscaleMax' : 'manual'}: a multiple of ${step} RU/s up to 1000000`,
    );
    return undefined;
  }
  const spec: ThroughputSpec = { mode, value, storageGB };
  if (raw.highest !== undefined) {
    if (typeof raw.highest !== 'number' || !Number.isInteger(raw.highest) || raw.highest < value)
      problems.push(`${path}.highest: a whole number of RU/s, at least the current value (${value})`);
    else spec.highest = raw.highest;
  }
  if (raw.partitions !== undefined) {
    if (
      typeof raw.partitions !== 'number' ||
      !Number.isInteger(raw.partitions) ||
      raw.partitions < 1 ||
      raw.partitions > 1000
    )
      problems.push(`${path}.partitions: a whole number of physical partitions from 1 to 1000`);
    else spec.partitions = raw.partitions;
  }
  const minimum = minimumOf({
    mode,
    highest: Math.max(spec.highest ?? value, value),
    storageGB,
    container: shared ? undefined : 'c',
    sharedBy: 0,
  });
  if (value < minimum)
    problems.push(`${path}: ${value} RU/s is below what the service allows for it (${minimum})`);
  return spec;
}

/** Validates an account's `databases` (raw, as in the file). */
export function resolveCosmosDatabases(
  raw: unknown,
  path: string,
  problems: string[],
): ResolvedCosmosDatabase[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) {
    problems.push(`${path}: must be a list`);
    return [];
  }
  const out: ResolvedCosmosDatabase[] = [];
  const names = new Set<string>();
  raw.forEach((db, i) => {
    const p = `${path}[${i}]`;
    if (!isObject(db)) {
      problems.push(`${p}: must be a mapping`);
      return;
    }
    unknownKeys(db, ['name', 'throughput', 'containers'], p, problems);
    if (typeof db.name !== 'string' || !NAME.test(db.name)) {
      problems.push(`${p}.name: a Cosmos DB database name (1-255 characters, no / \\ # ?)`);
      return;
    }
    if (names.has(db.name.toLowerCase())) problems.push(`${p}.name: duplicate database '${db.name}'`);
    names.add(db.name.toLowerCase());
    const containers: ResolvedCosmosDatabase['containers'] = [];
    const seen = new Set<string>();
    const rawContainers = db.containers ?? [];
    if (!Array.isArray(rawContainers)) problems.push(`${p}.containers: must be a list`);
    (Array.isArray(rawContainers) ? rawContainers : []).forEach((c, j) => {
      const cp = `${p}.containers[${j}]`;
      if (!isObject(c)) {
        problems.push(`${cp}: must be a mapping`);
        return;
      }
      unknownKeys(c, ['name', 'storageGB', 'throughput'], cp, problems);
      if (typeof c.name !== 'string' || !NAME.test(c.name)) {
        problems.push(`${cp}.name: a Cosmos DB container name (1-255 characters, no / \\ # ?)`);
        return;
      }
      if (seen.has(c.name.toLowerCase())) problems.push(`${cp}.name: duplicate container '${c.name}'`);
      seen.add(c.name.toLowerCase());
      const storageGB = c.storageGB ?? 1;
      if (typeof storageGB !== 'number' || !(storageGB >= 0) || storageGB > 1_000_000) {
        problems.push(`${cp}.storageGB: a number of GB from 0`);
        return;
      }
      containers.push({
        name: c.name,
        storageGB,
        throughput: throughputOf(c.throughput, `${cp}.throughput`, storageGB, false, problems),
      });
    });
    const sharedStorage = containers.filter((c) => !c.throughput).reduce((sum, c) => sum + c.storageGB, 0);
    const throughput = throughputOf(db.throughput, `${p}.throughput`, sharedStorage, true, problems);
    if (!throughput && containers.some((c) => !c.throughput))
      problems.push(
        `${p}: containers without throughput of their own need the database's shared throughput (give the database a throughput)`,
      );
    out.push({ name: db.name, throughput, containers });
  });
  return out;
}
