/** Reading remediation runs and moving the sandbox clock until they get somewhere, for the e2e tests. */
import { expect } from 'vitest';
import type { RunningLocalApp } from '../../../src/local/app';
import { advance, json } from './localApp';

export interface RunView {
  id: string;
  state: string;
  steps: Array<{ name: string; output?: unknown }>;
}

export const over = (run: { state: string } | undefined) =>
  run !== undefined && ['succeeded', 'failed', 'cancelled'].includes(run.state);

/** The playbook's runs, newest first (`GET /api/remediations?playbook=`). */
export async function runsOf(current: RunningLocalApp, playbook: string): Promise<RunView[]> {
  const answer = await json(current, `/api/remediations?playbook=${playbook}&limit=20`);
  expect(answer.status).toBe(200);
  return answer.body.runs as RunView[];
}

/**
 * Moves the sandbox clock a minute at a time (letting the app's runs work in between) until `done`
 * holds, or gives up after `maxMinutes` of sandbox time, saying what the alert rules and the app's
 * last log lines were.
 */
export async function until(
  current: RunningLocalApp,
  logs: readonly string[],
  done: () => Promise<boolean>,
  maxMinutes: number,
): Promise<void> {
  for (let minute = 0; minute <= maxMinutes; minute++) {
    for (let i = 0; i < 4; i++) {
      if (await done()) return;
      await new Promise((r) => setTimeout(r, 150));
    }
    await advance(current, { minutes: 1 });
  }
  const alerts = (await json(current, '/sandbox/alerts')).body;
  throw new Error(
    `the remediation did not get there in time: ${JSON.stringify(alerts)} ${logs.slice(-30).join('\n')}`,
  );
}

/**
 * Runs the scale-back timer now (`POST /admin/functions/remediationScaleBack`), then moves the clock
 * until every playbook's second run (the lowering after its raise) is over. The timer's answer status.
 */
export async function scaleBackNow(
  current: RunningLocalApp,
  logs: readonly string[],
  playbooks: readonly string[],
  maxMinutes = 30,
): Promise<number> {
  const tick = await fetch(`${current.url}/admin/functions/remediationScaleBack`, {
    method: 'POST',
    body: '{}',
  });
  await until(
    current,
    logs,
    async () => {
      for (const playbook of playbooks) {
        const runs = await runsOf(current, playbook);
        if (runs.length !== 2 || !over(runs[0])) return false;
      }
      return true;
    },
    maxMinutes,
  );
  return tick.status;
}

/** One delivery attempt of the sandbox's action group (`GET /sandbox/alerts`). */
export interface DeliveryView {
  rule: string;
  monitorCondition: string;
  duplicate: boolean;
  status: number;
  answer?: { status: string; runId?: string; playbook?: string };
}

/**
 * Each rule fired once (answered 202 accepted), and resolved; every redelivery was answered 200
 * (handled once); every rule is ok again. Returns the deliveries.
 */
export function expectEpisodes(
  alerts: { deliveries: DeliveryView[]; rules: Array<{ name: string; state: string }> },
  rules: readonly string[],
): DeliveryView[] {
  const { deliveries } = alerts;
  for (const rule of rules) {
    const fired = deliveries.filter((d) => d.rule === rule && d.monitorCondition === 'Fired' && !d.duplicate);
    expect(fired, rule).toHaveLength(1);
    expect(fired[0], rule).toMatchObject({ status: 202, answer: { status: 'accepted' } });
    expect(
      deliveries.some((d) => d.rule === rule && d.monitorCondition === 'Resolved'),
      rule,
    ).toBe(true);
  }
  for (const again of deliveries.filter((d) => d.duplicate)) expect(again).toMatchObject({ status: 200 });
  expect(alerts.rules.map((r) => [r.name, r.state])).toEqual(rules.map((r) => [r, 'ok']));
  return deliveries;
}

/**
 * The changes the audit holds (`remediation.raise` / `.lower` that succeeded) as `[action, target's
 * last segment, before, after]`, sorted.
 */
export function changesOf(
  records: Array<{
    action: string;
    outcome: string;
    target: string;
    before?: { value?: number };
    after?: { value?: number };
  }>,
): Array<[string, string, number | undefined, number | undefined]> {
  return records
    .filter((r) => ['remediation.raise', 'remediation.lower'].includes(r.action) && r.outcome === 'succeeded')
    .map((r): [string, string, number | undefined, number | undefined] => [
      r.action,
      r.target.split('/').at(-1) ?? '',
      r.before?.value,
      r.after?.value,
    ])
    .sort((a, b) => String(a).localeCompare(String(b)));
}
