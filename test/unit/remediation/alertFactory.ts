/** Azure Monitor alert factories built from Microsoft's published samples in test/fixtures/events/monitor. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, fixture } from '../../support/events';

export const MONITOR_DIR = 'events/monitor';
/** Full common-schema payload sample: a Resolved static-threshold metric alert (Sev3). */
export const COMMON_SAMPLE = `${MONITOR_DIR}/common-schema-sample-metric-static-resolved.json`;

type Json = Record<string, unknown>;

/** Every published Monitor sample file name (full payloads and `*.alertContext.json` fragments). */
export function monitorSampleFiles(): string[] {
  return readdirSync(join(FIXTURES, MONITOR_DIR))
    .filter((f) => f.endsWith('.json'))
    .sort();
}

/** A deep copy of a published full payload. */
export function sampleAlert(file: string): Json {
  return structuredClone(fixture<Json>(`${MONITOR_DIR}/${file}`));
}

export interface EssentialsOverrides {
  alertId?: string;
  alertRule?: string;
  severity?: string;
  monitorCondition?: 'Fired' | 'Resolved';
  signalType?: string;
  targets?: string[];
  firedDateTime?: string;
  resolvedDateTime?: string | null;
  description?: string;
}

/**
 * A full common-schema alert: the essentials of the published common-schema sample (metric, static
 * threshold, Resolved) with overrides, around `alertContext` (by default the sample's own). `Fired`
 * drops `resolvedDateTime`, as Azure Monitor does.
 */
export function commonAlert(o: EssentialsOverrides = {}, alertContext?: unknown): Json {
  const sample = fixture<{ schemaId: string; data: { essentials: Json; alertContext: unknown } & Json }>(
    COMMON_SAMPLE,
  );
  const essentials: Json = { ...sample.data.essentials };
  if (o.alertId !== undefined) essentials.alertId = o.alertId;
  if (o.alertRule !== undefined) essentials.alertRule = o.alertRule;
  if (o.severity !== undefined) essentials.severity = o.severity;
  if (o.signalType !== undefined) essentials.signalType = o.signalType;
  if (o.targets !== undefined) essentials.alertTargetIDs = o.targets;
  if (o.firedDateTime !== undefined) essentials.firedDateTime = o.firedDateTime;
  if (o.description !== undefined) essentials.description = o.description;
  if (o.monitorCondition !== undefined) {
    essentials.monitorCondition = o.monitorCondition;
    if (o.monitorCondition === 'Fired') delete essentials.resolvedDateTime;
  }
  if (o.resolvedDateTime === null) delete essentials.resolvedDateTime;
  else if (o.resolvedDateTime !== undefined) essentials.resolvedDateTime = o.resolvedDateTime;
  return structuredClone({
    ...sample,
    data: {
      ...sample.data,
      essentials,
      alertContext: alertContext === undefined ? sample.data.alertContext : alertContext,
    },
  });
}

/** A published `*.alertContext.json` fragment wrapped into a full payload (the common sample's essentials). */
export function fromAlertContextFragment(file: string, o: EssentialsOverrides = {}): Json {
  const fragment = fixture<{ alertContext: unknown }>(`${MONITOR_DIR}/${file}`);
  return commonAlert(o, fragment.alertContext);
}

/** Any Monitor sample file as a full payload. */
export function payloadOf(file: string): Json {
  return file.endsWith('.alertContext.json') ? fromAlertContextFragment(file) : sampleAlert(file);
}
