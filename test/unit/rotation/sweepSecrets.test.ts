import { beforeEach, describe, expect, it } from 'vitest';
import { TransientError } from '../../../src/lib/core/errors';
import { silentLogger } from '../../../src/lib/core/logging';
import type { SecretProperties } from '../../../src/lib/ports/secrets';
import { handleSecretEvent, type SecretEventDeps } from '../../../src/lib/rotation/handleSecretEvent';
import { parseSecretEvent } from '../../../src/lib/rotation/keyVaultEvent';
import { sweepSecrets } from '../../../src/lib/rotation/sweepSecrets';
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
  let deps: SecretEventDeps;
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
