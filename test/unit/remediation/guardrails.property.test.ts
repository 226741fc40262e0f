/**
 * The guardrails as properties: for many seeded random playbooks, service states and sequences of
 * alerts, scale-backs and changes made by people, the decisions the runs take (`planRaise`,
 * `planLower` over the ledger each run hands to the next) never exceed a ceiling or the service's
 * limit, never go below the floor or the service's minimum, never break the cooldown or the daily
 * cap, never touch a value a person set, and never act while the service is still applying a change.
 *
 * A small seeded generator (the sandbox's mulberry32) rather than a property-testing dependency:
 * every failure prints its seed and replays exactly.
 */
import { describe, expect, it } from 'vitest';
import type { ScalingPlaybook } from '../../../src/lib/config/playbooks';
import {
  DAY_MS,
  type Decision,
  EMPTY_LEDGER,
  type Ledger,
  nextDown,
  planLower,
  planRaise,
  type Reading,
  trimLedger,
  withChange,
} from '../../../src/lib/remediation/plan';
import { seededRandom } from '../../../src/local/sandbox';

const MINUTE = 60_000;
const SEEDS = 400;
const EVENTS = 120;

interface World {
  playbook: ScalingPlaybook;
  reading: Reading;
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function int(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

function randomWorld(random: () => number): World {
  const action = pick(random, [
    'cosmos-raise-autoscale-max',
    'servicebus-scale-messaging-units',
    'scale-consumers',
  ] as const);
  const base = {
    name: 'p',
    match: { alertRule: 'r' },
    cooldownMinutes: pick(random, [1, 5, 10, 30, 120]),
    maxActionsPerDay: int(random, 1, 8),
    dryRun: false,
    migrateToAutoscale: false,
    asyncScale: random() < 0.3,
    signal: {
      resourceId: '/subscriptions/x/resourceGroups/y/providers/A.B/c/d',
      region: 'westeurope',
      metric: 'm',
      aggregation: 'Maximum' as const,
      dimensions: {},
      recoveredBelow: 80,
      verifyMinutes: 30,
    },
  };
  if (action === 'cosmos-raise-autoscale-max') {
    const floor = int(random, 1, 5) * 1000;
    const ceiling = floor + int(random, 0, 20) * 1000;
    const playbook: ScalingPlaybook = {
      ...base,
      action,
      target: { kind: 'cosmosThroughput', accountId: 'a', database: 'd', container: 'c' },
      bounds: { floor, ceiling },
      step: int(random, 1, 5) * 1000,
      ...(random() < 0.3 ? { approvalAbove: floor + int(random, 0, 10) * 1000 } : {}),
    };
    const value = int(random, 1, 25) * 1000;
    return {
      playbook,
      reading: {
        value,
        unit: 'RU/s',
        minimum: int(random, 1, 6) * 1000,
        limit: playbook.asyncScale ? 1_000_000 : int(random, 1, 4) * 10_000,
        mode: 'autoscale',
      },
    };
  }
  if (action === 'servicebus-scale-messaging-units') {
    const partitions = pick(random, [1, 2, 4]);
    const allowed = [1, 2, 4, 8, 16].map((u) => u * partitions);
    const floor = pick(random, allowed.slice(0, 3));
    const ceiling = pick(
      random,
      allowed.filter((u) => u >= floor),
    );
    return {
      playbook: {
        ...base,
        action,
        target: { kind: 'serviceBusNamespace', namespaceId: 'n' },
        bounds: { floor, ceiling },
        step: 1,
      },
      reading: {
        value: pick(random, allowed),
        unit: 'messaging units',
        minimum: allowed[0]!,
        limit: allowed.at(-1),
        allowed,
      },
    };
  }
  const floor = int(random, 1, 5);
  return {
    playbook: {
      ...base,
      action,
      target: { kind: 'containerApp', containerAppId: 'app' },
      bounds: { floor, ceiling: floor + int(random, 0, 30) },
      step: int(random, 1, 5),
    },
    reading: {
      value: int(random, 1, 40),
      unit: 'max replicas',
      minimum: int(random, 1, 3),
      limit: undefined,
    },
  };
}

/** What the service takes at all (a person's change stays within it too). */
function serviceValues(world: World, random: () => number): number {
  const { reading, playbook } = world;
  if (reading.allowed) return pick(random, reading.allowed);
  if (playbook.action === 'cosmos-raise-autoscale-max')
    return Math.max(reading.minimum, int(random, 1, 40) * 1000);
  return int(random, Math.max(1, reading.minimum), 60);
}

interface Change {
  at: number;
  direction: 'raise' | 'lower';
  from: number;
  to: number;
  ceiling: number;
  limit: number | undefined;
  floor: number;
  busy: boolean;
  setBy: 'stampkeeper' | 'person';
  lastSetByStampkeeper: number | undefined;
}

function simulate(seed: number): { changes: Change[]; world: World; decisions: Decision[] } {
  const random = seededRandom(seed);
  const world = randomWorld(random);
  let now = Date.parse('2026-05-01T00:00:00Z');
  let ledger: Ledger = EMPTY_LEDGER;
  let lastSet: number | undefined;
  const changes: Change[] = [];
  const decisions: Decision[] = [];
  for (let i = 0; i < EVENTS; i++) {
    now += pick(random, [0, 1, 3, 7, 15, 45, 120, 600]) * MINUTE;
    const at = new Date(now);
    // The service is sometimes still applying a change; people sometimes change the value.
    world.reading.busy = random() < 0.1 ? 'still applying' : undefined;
    const event = random();
    if (event < 0.08) {
      world.reading.value = serviceValues(world, random);
      continue;
    }
    const raise = event < 0.7;
    const before = world.reading.value;
    const decision = raise
      ? planRaise({ reading: world.reading, playbook: world.playbook, ledger, now: at, because: 'test' })
      : planLower({ reading: world.reading, playbook: world.playbook, ledger, now: at, because: 'test' });
    decisions.push(decision);
    // What each run records for the next one: its plan's ledger, plus its change when it made one.
    ledger = trimLedger(ledger, at);
    if (!decision.act) continue;
    changes.push({
      at: now,
      direction: decision.direction,
      from: before,
      to: decision.to,
      ceiling: world.playbook.bounds.ceiling,
      limit: world.reading.limit,
      floor: Math.max(world.playbook.bounds.floor, world.reading.minimum),
      busy: world.reading.busy !== undefined,
      setBy: 'stampkeeper',
      lastSetByStampkeeper: lastSet,
    });
    world.reading.value = decision.to;
    lastSet = decision.to;
    ledger = withChange(
      ledger,
      { at: at.toISOString(), direction: decision.direction, from: before, to: decision.to, runId: `r${i}` },
      at,
    );
  }
  return { changes, world, decisions };
}

describe('remediation guardrails, for any sequence of alerts (seeded property test)', () => {
  it(`holds the bounds, the service limits, the cooldown and the daily cap over ${SEEDS} random worlds`, () => {
    let acted = 0;
    let held = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      // Prepare / Act
      const { changes, world, decisions } = simulate(seed);
      acted += changes.length;
      held += decisions.filter((d) => !d.act).length;
      const where = `seed ${seed} (${world.playbook.action})`;

      // Assess
      for (const [i, c] of changes.entries()) {
        expect(c.busy, `${where}: changed while the service applied a change`).toBe(false);
        if (c.direction === 'raise') {
          expect(
            c.to,
            `${where}: raise ${c.from} -> ${c.to} above the ceiling ${c.ceiling}`,
          ).toBeLessThanOrEqual(c.ceiling);
          if (c.limit !== undefined)
            expect(c.to, `${where}: raise above the service limit ${c.limit}`).toBeLessThanOrEqual(c.limit);
          expect(c.to, `${where}: a raise that lowers`).toBeGreaterThan(c.from);
        } else {
          expect(
            c.to,
            `${where}: lowered ${c.from} -> ${c.to} below the floor ${c.floor}`,
          ).toBeGreaterThanOrEqual(c.floor);
          expect(c.to, `${where}: a scale-back that raises`).toBeLessThan(c.from);
          expect(c.from, `${where}: lowered a value a person set`).toBe(c.lastSetByStampkeeper);
        }
        if (world.reading.allowed) expect(world.reading.allowed, where).toContain(c.to);
        if (world.playbook.action === 'cosmos-raise-autoscale-max') expect(c.to % 1000, where).toBe(0);
        const previous = changes[i - 1];
        if (previous)
          expect(c.at - previous.at, `${where}: two changes within the cooldown`).toBeGreaterThanOrEqual(
            world.playbook.cooldownMinutes * MINUTE,
          );
        const raisesInDay = changes.filter(
          (o) => o.direction === 'raise' && o.at > c.at - DAY_MS && o.at <= c.at,
        );
        expect(raisesInDay.length, `${where}: more raises in 24 h than the cap`).toBeLessThanOrEqual(
          world.playbook.maxActionsPerDay,
        );
      }
    }
    // The generator exercises both sides: many changes made, many held.
    expect(acted).toBeGreaterThan(SEEDS);
    expect(held).toBeGreaterThan(SEEDS);
  });

  it('a scale-back never goes below the service minimum even when the policy floor is lower', () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      // Prepare
      const random = seededRandom(seed * 7919);
      const world = randomWorld(random);
      world.playbook.bounds.floor = 1;
      // Act
      const next = nextDown(world.reading, world.playbook);
      // Assess
      if (next !== undefined) expect(next, `seed ${seed}`).toBeGreaterThanOrEqual(world.reading.minimum);
    }
  });
});
