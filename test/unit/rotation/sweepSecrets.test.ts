import { beforeEach, describe, expect, it } from 'vitest';
import { TransientError } from '../../../src/lib/core/errors';
import { silentLogger } from '../../../src/lib/core/logging';
import type { SecretProperties } from '../../../src/lib/ports/secrets';
import { handleSecretEvent } from '../../../src/lib/rotation/handleSecretEvent';
import { parseSecretEvent } from '../../../src/lib/rotation/keyVaultEvent';
import {
  type ManagedSecretPolicyView,
  type PacingTimer,
  type SweepDeps,
  sweepSecrets,
  TransactionPacer,
} from '../../../src/lib/rotation/sweepSecrets';
import { secretEvent } from '../../support/events';
import {
  MemoryAudit,
  MemoryIdempotency,
  MemoryRejections,
  MemoryVault,
  RecordingNotifier,
  TestClock,
} from '../../support/fakes';

const DAY = 86_400_000;
const VAULT = 'https://contoso-kv.vault.azure.net';
const NOW = new Date('2026-03-01T00:00:00Z');
const at = (days: number) => new Date(NOW.getTime() + days * DAY);

describe('sweepSecrets', () => {
  let vault: MemoryVault;
  let audit: MemoryAudit;
  let notifier: RecordingNotifier;
  let deps: SweepDeps;
  const ctx = { actor: 'system:timer', correlationId: 'sweep-1', attemptId: 'sweep-1' };

  beforeEach(() => {
    const clock = new TestClock(NOW);
    vault = new MemoryVault();
    audit = new MemoryAudit();
    notifier = new RecordingNotifier();
    const add = (name: string, version: string, expiresOn: Date, extra: Partial<SecretProperties> = {}) =>
      vault.add({
        vaultUrl: VAULT,
        name,
        version,
        expiresOn,
        createdOn: new Date('2026-01-01'),
        enabled: true,
        ...extra,
      });
    add('cosmos-key', 'c1', at(20));
    add('stray', 's1', at(5));
    add('old', 'o1', at(-2));
    add('far', 'f1', at(90));
    add('disabled', 'd1', at(3), { enabled: false });
    deps = {
      vault,
      notifier,
      audit,
      idempotency: new MemoryIdempotency(clock),
      rejections: new MemoryRejections(audit),
      claimLeaseMs: 12 * 60_000,
      clock,
      logger: silentLogger,
      policy: {
        lookup: (_v, name) =>
          name === 'cosmos-key' ? { owner: 'team-data', channels: ['ops-events', 'ops-teams'] } : undefined,
        defaultChannels: () => ['ops-events'],
        managedVaults: () => [VAULT],
        vaultAllowed: (url) => url === VAULT,
      },
      environment: 'test',
      dryRun: false,
      idempotencyTtlMs: 3 * DAY,
    };
  });

  it('handles every secret inside its window or expired, skipping far, disabled ones', async () => {
    // Act
    const summary = await sweepSecrets(deps, ctx);
    // Assess
    expect(summary).toMatchObject({
      vaults: 1,
      checked: 3,
      nearExpiry: 2,
      expired: 1,
      handled: 3,
      duplicates: 0,
      failures: [],
    });
    expect(audit.records.map((r) => [r.target, r.action, r.outcome]).sort()).toEqual([
      ['vaults/contoso-kv/secrets/cosmos-key', 'secret.nearExpiry.notify', 'succeeded'],
      ['vaults/contoso-kv/secrets/old', 'secret.expired.notify', 'reported'],
      ['vaults/contoso-kv/secrets/stray', 'secret.nearExpiry.notify', 'reported'],
    ]);
    expect(audit.records.every((r) => r.actor === 'system:timer')).toBe(true);
  });

  it('is a duplicate of the Key Vault event already handled, and of itself on the next run', async () => {
    // Prepare: the Event Grid event for cosmos-key arrived first.
    const event = parseSecretEvent(
      secretEvent({
        type: 'Microsoft.KeyVault.SecretNearExpiry',
        vault: 'contoso-kv',
        name: 'cosmos-key',
        version: 'c1',
        exp: at(20).getTime() / 1000,
      }),
    );
    await handleSecretEvent(event, deps, { actor: 'system:eventgrid', correlationId: 'e', attemptId: 'e' });
    const sentBefore = notifier.sent.length;
    // Act
    const first = await sweepSecrets(deps, ctx);
    const second = await sweepSecrets(deps, { ...ctx, attemptId: 'sweep-2' });
    // Assess
    expect(first).toMatchObject({ handled: 2, duplicates: 1 });
    expect(second).toMatchObject({ handled: 0, duplicates: 3 });
    expect(notifier.sent.length - sentBefore).toBe(2);
    expect(audit.records.filter((r) => r.target.endsWith('/cosmos-key'))).toHaveLength(1);
  });

  it('does not repeat a notification while the same version stays near expiry, beyond the idempotency ttl', async () => {
    // Prepare: a first sweep, then a week of sweeps (the configured idempotency ttl is 3 days).
    const clock = deps.clock as TestClock;
    await sweepSecrets(deps, ctx);
    const sent = notifier.sent.length;
    // Act
    for (let day = 1; day <= 7; day++) {
      clock.advance(DAY);
      await sweepSecrets(deps, { ...ctx, attemptId: `sweep-day-${day}` });
    }
    // Assess: nothing repeats; the one new notification is 'stray' expiring on day 5 (a new kind).
    const newOnes = notifier.sent.slice(sent).map((n) => [n.notification.subject, n.notification.type]);
    expect(newOnes).toEqual([['vaults/contoso-kv/secrets/stray', 'com.stampkeeper.secret.expired']]);
    expect(audit.records.filter((r) => r.target.endsWith('/cosmos-key'))).toHaveLength(1);
  });

  it('acts on a secret whose event was skipped while its state looked different (the key stayed free)', async () => {
    // Prepare: the event arrives while someone has moved the expiry far out, then it is moved back
    const cosmos = vault.versions.find((v) => v.properties.name === 'cosmos-key')!.properties;
    cosmos.expiresOn = at(200);
    const event = parseSecretEvent(
      secretEvent({
        type: 'Microsoft.KeyVault.SecretNearExpiry',
        vault: 'contoso-kv',
        name: 'cosmos-key',
        version: 'c1',
        exp: at(20).getTime() / 1000,
      }),
    );
    const skipped = await handleSecretEvent(event, deps, {
      actor: 'system:eventgrid',
      correlationId: 'e',
      attemptId: 'e',
    });
    cosmos.expiresOn = at(20);

    // Act
    const summary = await sweepSecrets(deps, ctx);

    // Assess
    expect(skipped.status).toBe('skipped');
    expect(summary).toMatchObject({ handled: 3, duplicates: 0 });
    expect(notifier.sent.filter((s) => s.notification.subject.endsWith('/cosmos-key'))).toHaveLength(2);
  });

  it('handles every candidate when versions were created in the same second', async () => {
    // Prepare
    vault.add({
      vaultUrl: VAULT,
      name: 'cosmos-key',
      version: 'a0',
      expiresOn: at(21),
      createdOn: new Date('2026-01-01T00:00:00.500Z'),
      enabled: true,
    });

    // Act
    const summary = await sweepSecrets(deps, ctx);

    // Assess
    const cosmos = notifier.sent.filter((s) => s.notification.subject.endsWith('/cosmos-key'));
    expect(cosmos.map((s) => s.notification.data.version).sort()).toEqual(['a0', 'a0', 'c1', 'c1']);
    expect(summary).toMatchObject({ checked: 3, nearExpiry: 3, handled: 4 });
  });

  it('counts certificate-backed secrets and reports them as certificate-managed', async () => {
    // Prepare
    vault.versions.find((v) => v.properties.name === 'stray')!.properties.managed = true;

    // Act
    const summary = await sweepSecrets(deps, ctx);

    // Assess
    expect(summary.certificateManaged).toBe(1);
    const stray = notifier.sent.find((s) => s.notification.subject.endsWith('/stray'))!.notification;
    expect(stray.facts.Managed).toBe('certificate');
  });

  it('collects a failing vault or secret without throwing, and the next sweep catches up', async () => {
    notifier.failures.set('ops-events', [{ retryable: true }]);
    const failing = await sweepSecrets(deps, ctx);
    expect(failing.failures).toEqual([
      expect.objectContaining({
        target: expect.stringMatching(/^vaults\/contoso-kv\/secrets\//),
        retryable: true,
      }),
    ]);
    const next = await sweepSecrets(deps, { ...ctx, attemptId: 'sweep-2' });
    expect(next.failures).toEqual([]);
    expect(next.handled).toBe(1);

    deps.vault = Object.assign(Object.create(vault), {
      // biome-ignore lint/correctness/useYield: fails before yielding, like an unreachable vault
      async *listSecrets() {
        throw new TransientError('vault unreachable');
      },
    });
    const unreachable = await sweepSecrets(deps, ctx);
    expect(unreachable.failures).toEqual([
      { target: 'vaults/contoso-kv', reason: 'vault unreachable', retryable: true },
    ]);
  });
});

/** Machine time that moves only by what the pacer sleeps (and what a test adds). */
class FakeTimer implements PacingTimer {
  t = 0;
  readonly slept: number[] = [];
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.slept.push(ms);
    this.t += ms;
  }
}

/** The most times inside any half-open window of `windowMs`. */
function peak(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

/** A vault whose every Key Vault transaction (a page of a listing, 25 items) is timed. */
function timedVault(inner: MemoryVault, timer: FakeTimer) {
  const transactions: Array<{ at: number; call: string }> = [];
  const pages = async function* <T>(items: AsyncIterable<T>, call: string): AsyncIterable<T> {
    let i = 0;
    transactions.push({ at: timer.now(), call });
    for await (const item of items) {
      if (i > 0 && i % 25 === 0) transactions.push({ at: timer.now(), call });
      i++;
      yield item;
    }
  };
  const vault = Object.assign(Object.create(inner) as MemoryVault, {
    listSecrets: (url: string) => pages(inner.listSecrets(url), 'list'),
    listSecretVersions: (url: string, name: string) =>
      pages(inner.listSecretVersions(url, name), `versions:${name}`),
  });
  return { vault, transactions };
}

describe('TransactionPacer', () => {
  it('keeps every window of the budget to its number of transactions, waiting only when it must', async () => {
    // Prepare
    const timer = new FakeTimer();
    const pacer = new TransactionPacer({ transactions: 4, windowMs: 10_000 }, timer);
    const times: number[] = [];

    // Act
    for (let i = 0; i < 10; i++) {
      await pacer.take();
      times.push(timer.now());
      timer.t += 1_000; // each call takes a second
    }

    // Assess
    // The 5th starts 10 s after the 1st ended (its end is when the 2nd was taken), and so on.
    expect(times).toEqual([0, 1_000, 2_000, 3_000, 11_000, 12_000, 13_000, 14_000, 22_000, 23_000]);
    expect(peak(times, 10_000)).toBe(4);
    expect(pacer.count).toBe(10);
    expect(() => new TransactionPacer({ transactions: 0, windowMs: 1 })).toThrow(RangeError);
  });
});

describe('sweepSecrets: Key Vault budget', () => {
  it('lists the vault once and versions only of secrets in the window, paced to the budget', async () => {
    // Prepare: 60 secrets in the window, 40 far from it.
    const timer = new FakeTimer();
    const clock = new TestClock(NOW);
    const inner = new MemoryVault();
    for (let i = 0; i < 100; i++) {
      inner.add({
        vaultUrl: VAULT,
        name: `s-${String(i).padStart(3, '0')}`,
        version: `v${i}`,
        expiresOn: at(i < 60 ? 10 : 200),
        createdOn: new Date('2026-01-01'),
        enabled: true,
      });
    }
    const { vault, transactions } = timedVault(inner, timer);
    const audit = new MemoryAudit();
    const deps: SweepDeps = {
      vault,
      notifier: new RecordingNotifier(),
      audit,
      idempotency: new MemoryIdempotency(clock),
      rejections: new MemoryRejections(audit),
      claimLeaseMs: 60_000,
      clock,
      logger: silentLogger,
      policy: {
        lookup: () => undefined,
        defaultChannels: () => ['ops-events'],
        managedVaults: () => [VAULT],
        vaultAllowed: () => true,
      },
      environment: 'test',
      dryRun: false,
      idempotencyTtlMs: DAY,
    };

    // Act
    const summary = await sweepSecrets(
      deps,
      { actor: 'system:timer', correlationId: 'c', attemptId: 'a' },
      { budget: { transactions: 5, windowMs: 10_000 }, timer },
    );

    // Assess
    // 4 pages of 25, reserved one page ahead (a 5th is reserved before the listing ends), 60 version listings.
    expect(summary).toMatchObject({ checked: 60, handled: 60, keyVaultTransactions: 5 + 60, failures: [] });
    expect(transactions.filter((t) => t.call === 'list')).toHaveLength(4);
    const listed = transactions.filter((t) => t.call.startsWith('versions:')).map((t) => t.call);
    expect(listed).toHaveLength(60);
    expect(new Set(listed).size).toBe(60);
    expect(listed.every((c) => Number(c.slice('versions:s-'.length)) < 60)).toBe(true);
    expect(
      peak(
        transactions.map((t) => t.at),
        10_000,
      ),
    ).toBeLessThanOrEqual(5);
    expect(timer.slept.length).toBeGreaterThan(0);
  });
});

describe('sweepSecrets: managed secrets that disagree with the policy', () => {
  const RESOURCE =
    '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-a';
  const GOOD_TAGS = {
    'stampkeeper-provider': 'cosmosDbKeys',
    'stampkeeper-resource': RESOURCE,
    'stampkeeper-key': 'primary',
  };
  const rotated = (name: string): ManagedSecretPolicyView => ({
    name,
    owner: 'team-data',
    channels: ['ops-events'],
    rotation: { provider: 'cosmosDbKeys', resourceId: RESOURCE },
  });
  const manual = (name: string): ManagedSecretPolicyView => ({
    name,
    channels: ['ops-teams'],
    rotation: { provider: 'manual' },
  });

  let vault: MemoryVault;
  let audit: MemoryAudit;
  let notifier: RecordingNotifier;
  let clock: TestClock;
  let deps: SweepDeps;
  let managed: ManagedSecretPolicyView[];
  const ctx = { actor: 'system:timer', correlationId: 'sweep-p', attemptId: 'sweep-p' };
  const add = (name: string, version: string, extra: Partial<SecretProperties> = {}) =>
    vault.add({
      vaultUrl: VAULT,
      name,
      version,
      expiresOn: at(80),
      createdOn: new Date(`2026-01-0${version.endsWith('2') ? 2 : 1}`),
      enabled: true,
      tags: GOOD_TAGS,
      ...extra,
    });
  const sweep = (attemptId = 'sweep-p') =>
    sweepSecrets(deps, { ...ctx, attemptId }, { timer: new FakeTimer() });
  const reports = () =>
    audit.records
      .filter((r) => r.action === 'secret.policy.report')
      .map((r) => [
        r.target.split('/').pop(),
        (r.before as { version: string }).version,
        (r.before as { problem: string }).problem,
      ])
      .sort();

  beforeEach(() => {
    clock = new TestClock(NOW);
    vault = new MemoryVault();
    audit = new MemoryAudit();
    notifier = new RecordingNotifier();
    managed = [];
    deps = {
      vault,
      notifier,
      audit,
      idempotency: new MemoryIdempotency(clock),
      rejections: new MemoryRejections(audit),
      claimLeaseMs: 60_000,
      clock,
      logger: silentLogger,
      policy: {
        lookup: () => undefined,
        defaultChannels: () => ['ops-events'],
        managedVaults: () => [VAULT],
        vaultAllowed: () => true,
      },
      managedSecrets: (url) => (url === VAULT ? managed : []),
      environment: 'test',
      dryRun: false,
      idempotencyTtlMs: DAY,
    };
  });

  it('reports each kind of disagreement once per (secret, version, kind), to the secret channels', async () => {
    // Prepare
    add('healthy', 'h1');
    add('untagged', 'u1', { tags: { owner: 'team-data' } });
    add('malformed', 'm1', { tags: { ...GOOD_TAGS, 'stampkeeper-key': 'key1' } });
    add('other-provider', 'p1', { tags: { ...GOOD_TAGS, 'stampkeeper-provider': 'storageAccountKeys' } });
    add('other-resource', 'r1', { tags: { ...GOOD_TAGS, 'stampkeeper-resource': `${RESOURCE}-b` } });
    add('disabled', 'd1', { enabled: false });
    add('no-expiry', 'n1', { expiresOn: undefined });
    add('certificate', 'c1', { managed: true, tags: {} });
    add('manual-untagged', 'x1', { tags: {} });
    managed = [
      rotated('healthy'),
      rotated('untagged'),
      rotated('malformed'),
      rotated('other-provider'),
      rotated('other-resource'),
      rotated('disabled'),
      manual('no-expiry'),
      rotated('certificate'),
      manual('manual-untagged'),
      rotated('absent'),
    ];

    // Act
    const first = await sweep();
    const second = await sweep('sweep-q');

    // Assess
    expect(reports()).toEqual([
      ['absent', 'none', 'missing'],
      ['certificate', 'c1', 'certificateManaged'],
      ['disabled', 'd1', 'disabled'],
      ['malformed', 'm1', 'tagsMalformed'],
      ['no-expiry', 'n1', 'noExpiry'],
      ['other-provider', 'p1', 'providerMismatch'],
      ['other-resource', 'r1', 'resourceMismatch'],
      ['untagged', 'u1', 'tagsMissing'],
    ]);
    expect(
      audit.records.filter((r) => r.action === 'secret.policy.report').every((r) => r.outcome === 'reported'),
    ).toBe(true);
    expect(first.disagreements).toEqual({ found: 8, reported: 8, duplicates: 0 });
    expect(second.disagreements).toEqual({ found: 8, reported: 0, duplicates: 8 });
    expect(notifier.sent).toHaveLength(8);
    const noExpiry = notifier.sent.find((s) => s.notification.subject.endsWith('/no-expiry'))!;
    expect(noExpiry.channel).toBe('ops-teams');
    expect(noExpiry.notification).toMatchObject({
      type: 'com.stampkeeper.secret.policyDisagreement',
      severity: 'warning',
      facts: { Secret: 'no-expiry', Version: 'n1', Problem: 'noExpiry', Rotation: 'manual' },
    });
    const untagged = notifier.sent.find((s) => s.notification.subject.endsWith('/untagged'))!.notification;
    expect(untagged.summary).toContain('stampkeeper-provider, stampkeeper-resource, stampkeeper-key');
    expect(JSON.stringify([notifier.sent, audit.records])).not.toContain('not-a-real-secret');
  });

  it('lists versions only of managed secrets the listing shows in disagreement', async () => {
    // Prepare
    add('healthy', 'h1');
    add('untagged', 'u1', { tags: {} });
    managed = [rotated('healthy'), rotated('untagged')];
    const listedVersions: string[] = [];
    const inner = vault;
    deps.vault = Object.assign(Object.create(inner) as MemoryVault, {
      listSecretVersions: (url: string, name: string) => {
        listedVersions.push(name);
        return inner.listSecretVersions(url, name);
      },
    });

    // Act
    const summary = await sweep();

    // Assess
    expect(listedVersions).toEqual(['untagged']);
    expect(summary.keyVaultTransactions).toBe(2);
  });

  it('reports a new version that still disagrees, and nothing once it is fixed', async () => {
    // Prepare
    add('untagged', 'u1', { tags: {} });
    managed = [rotated('untagged')];
    await sweep();

    // Act: a new untagged version, then a tagged one.
    add('untagged', 'u2', { tags: {} });
    const renewed = await sweep('sweep-2');
    add('untagged', 'u3', { tags: GOOD_TAGS, createdOn: new Date('2026-01-03') });
    const fixed = await sweep('sweep-3');

    // Assess
    expect(reports()).toEqual([
      ['untagged', 'u1', 'tagsMissing'],
      ['untagged', 'u2', 'tagsMissing'],
    ]);
    expect(renewed.disagreements).toEqual({ found: 1, reported: 1, duplicates: 0 });
    expect(fixed.disagreements).toEqual({ found: 0, reported: 0, duplicates: 0 });
  });

  it('leaves the key free when the notice failed (the next sweep reports), and remembers dry runs apart', async () => {
    // Prepare
    add('disabled', 'd1', { enabled: false });
    managed = [rotated('disabled')];
    notifier.failures.set('ops-events', [{ retryable: true }]);

    // Act
    const failed = await sweep();
    const dry = await sweepSecrets(
      deps,
      { ...ctx, attemptId: 'dry', dryRun: true },
      { timer: new FakeTimer() },
    );
    const retried = await sweep('sweep-2');

    // Assess
    expect(failed.failures).toEqual([
      expect.objectContaining({ target: 'vaults/contoso-kv/secrets/disabled', retryable: true }),
    ]);
    expect(failed.disagreements.reported).toBe(0);
    expect(dry.disagreements).toEqual({ found: 1, reported: 1, duplicates: 0 });
    expect(retried.disagreements).toEqual({ found: 1, reported: 1, duplicates: 0 });
    expect(
      audit.records
        .filter((r) => r.action === 'secret.policy.report')
        .map((r) => r.outcome)
        .sort(),
    ).toEqual(['planned', 'reported']);
    expect(notifier.sent).toHaveLength(1);
  });
});
