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
