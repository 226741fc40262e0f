/** The bundled app on the local host and the sandbox, for the rotation end-to-end tests (see localApp.ts). */
import type { RunningLocalApp } from '../../../src/local/app';
import { advance, json, type LocalAppHooks, localAppHooks } from './localApp';

export { advance, json };

export const VAULT = 'stampkeeper-sandbox';
export const COSMOS_TARGET = `vaults/${VAULT}/secrets/cosmos-primary-key`;

/** The rotation tests' app: every event delivered twice (the rotation must start once). */
export function rotationAppHooks(): LocalAppHooks {
  return localAppHooks({ prefix: 'r', sandbox: { random: () => 0 } });
}

/**
 * Moves the sandbox clock a minute at a time until the secret's last rotation is over or parked for
 * approval (or gives up after `maxMinutes` of sandbox time).
 */
export async function untilRotationEnds(
  current: RunningLocalApp,
  secret = 'cosmos-primary-key',
  maxMinutes = 60,
) {
  for (let i = 0; i < maxMinutes * 4; i++) {
    const history = await json(current, `/api/rotations?vault=${VAULT}&secret=${secret}`);
    const latest = history.body?.runs?.[0];
    if (latest && ['succeeded', 'failed', 'cancelled'].includes(latest.state)) return latest;
    if (latest && latest.state === 'awaiting-approval') return latest;
    await new Promise((r) => setTimeout(r, 250));
    if (i % 4 === 3) await advance(current, { minutes: 1 });
  }
  throw new Error(`the rotation of ${secret} did not end`);
}
