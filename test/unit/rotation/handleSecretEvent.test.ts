import { beforeEach, describe, expect, it } from 'vitest';
import {
  ForbiddenError,
  InProgressError,
  isRetryable,
  TransientError,
  type ValidationError,
} from '../../../src/lib/core/errors';
import { silentLogger } from '../../../src/lib/core/logging';
import { clearPendingCompletions } from '../../../src/lib/core/once';
import {
  handleSecretEvent,
  recordRejectedEvent,
  type SecretEventDeps,
  type SecretPolicyView,
} from '../../../src/lib/rotation/handleSecretEvent';
import { parseSecretEvent } from '../../../src/lib/rotation/keyVaultEvent';
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
const EXP = new Date(NOW.getTime() + 29 * DAY);

const policy: SecretPolicyView = {
  lookup: (vaultUrl, name) =>
    vaultUrl === VAULT && name === 'cosmos-key'
      ? { owner: 'team-data', channels: ['ops-events', 'ops-teams'], rotation: 'manual' }
      : undefined,
  defaultChannels: () => ['ops-events'],
  managedVaults: () => [VAULT],
  vaultAllowed: (vaultUrl) => vaultUrl === VAULT,
};

function nearExpiry(name = 'cosmos-key', version = 'v1', id = 'evt-1') {
  return parseSecretEvent(
    secretEvent({
      id,
      type: 'Microsoft.KeyVault.SecretNearExpiry',
      vault: 'contoso-kv',
      name,
      version,
      exp: EXP.getTime() / 1000,
    }),
  );
}

describe('handleSecretEvent', () => {
  let clock: TestClock;
  let deps: SecretEventDeps;
  let vault: MemoryVault;
  let audit: MemoryAudit;
  let notifier: RecordingNotifier;
  let rejections: MemoryRejections;
  let n = 0;
  const ctx = () => ({ actor: 'system:eventgrid', correlationId: 'corr-1', attemptId: `attempt-${++n}` });

  beforeEach(() => {
    clearPendingCompletions();
    clock = new TestClock(NOW);
    vault = new MemoryVault();
    audit = new MemoryAudit();
    notifier = new RecordingNotifier();
    vault.add({
      vaultUrl: VAULT,
      name: 'cosmos-key',
      version: 'v1',
      expiresOn: EXP,
      createdOn: new Date('2026-01-01'),
      enabled: true,
    });
    vault.add({
      vaultUrl: VAULT,
      name: 'stray',
      version: 's1',
      expiresOn: EXP,
      createdOn: new Date('2026-01-01'),
      enabled: true,
    });
    rejections = new MemoryRejections(audit);
    deps = {
      vault,
      notifier,
      audit,
      idempotency: new MemoryIdempotency(clock),
      rejections,
      claimLeaseMs: 12 * 60_000,
      clock,
      logger: silentLogger,
      policy,
      environment: 'test',
      dryRun: false,
      idempotencyTtlMs: 3 * DAY,
    };
  });

  it('notifies the managed secret channels once and audits once, even when delivered twice', async () => {
    // Act
    const first = await handleSecretEvent(nearExpiry(), deps, ctx());
    const second = await handleSecretEvent(nearExpiry(), deps, ctx());
    // Assess
    expect(first).toMatchObject({ status: 'handled', outcome: 'succeeded' });
    expect(second.status).toBe('duplicate');
    expect(notifier.sent.map((s) => s.channel).sort()).toEqual(['ops-events', 'ops-teams']);
    expect(audit.records).toHaveLength(1);
    expect(audit.records[0]).toMatchObject({
      action: 'secret.nearExpiry.notify',
      target: 'vaults/contoso-kv/secrets/cosmos-key',
    });
    const sent = notifier.sent[0]!.notification;
    expect(sent.facts['Days left']).toBe('29');
    expect(sent.severity).toBe('warning');
  });

  it('reports a secret the policy does not name to the default channels and never touches it', async () => {
    const result = await handleSecretEvent(nearExpiry('stray', 's1', 'evt-2'), deps, ctx());
    expect(result).toMatchObject({ status: 'handled', outcome: 'reported' });
    expect(notifier.sent.map((s) => s.channel)).toEqual(['ops-events']);
    expect(notifier.sent[0]!.notification.facts.Managed).toBe('no');
    expect(audit.records[0]!.reason).toMatch(/does not name/);
  });

  it('skips a stale event whose version was already replaced, sending nothing and leaving the key free', async () => {
    // Prepare
    vault.add({
      vaultUrl: VAULT,
      name: 'cosmos-key',
      version: 'v2',
      expiresOn: new Date(NOW.getTime() + 90 * DAY),
      createdOn: new Date('2026-02-01'),
    });

    // Act
    const result = await handleSecretEvent(nearExpiry(), deps, ctx());
    const again = await handleSecretEvent(nearExpiry(), deps, ctx());

    // Assess
    expect(result).toMatchObject({ status: 'skipped' });
    expect(again).toMatchObject({ status: 'skipped' });
    expect(notifier.sent).toHaveLength(0);
    expect(audit.records).toHaveLength(1);
    expect(audit.records[0]).toMatchObject({ outcome: 'skipped' });
    expect(audit.records[0]!.reason).toMatch(/newer version \(v2\)/);
  });

  it('acts on a redelivery after a skip taken from state that changed: only an action consumes the key', async () => {
    // Prepare: at first the vault does not list the secret (it was being restored)
    const listed = vault.versions.splice(0, 1);
    const first = await handleSecretEvent(nearExpiry(), deps, ctx());
    vault.versions.unshift(...listed);

    // Act
    const redelivered = await handleSecretEvent(nearExpiry(), deps, ctx());

    // Assess
    expect(first).toMatchObject({ status: 'skipped', reason: 'the secret no longer exists' });
    expect(redelivered).toMatchObject({ status: 'handled', outcome: 'succeeded' });
    expect(notifier.sent.map((s) => s.channel).sort()).toEqual(['ops-events', 'ops-teams']);
    expect(audit.records.map((r) => r.outcome).sort()).toEqual(['skipped', 'succeeded']);
  });

  it('warns on an early event whose expiry is unchanged, though it arrives before the 30-day mark', async () => {
    // Prepare: Key Vault raised it 31 days before the expiry (its clock and ours differ)
    clock.advance(-2 * DAY);

    // Act
    const result = await handleSecretEvent(nearExpiry(), deps, ctx());

    // Assess
    expect(result).toMatchObject({ status: 'handled', outcome: 'succeeded' });
    expect(notifier.sent[0]!.notification.facts['Days left']).toBe('31');
  });

  it('skips an event whose expiry was moved beyond the window, and acts when it is moved back', async () => {
    // Prepare
    vault.versions[0]!.properties.expiresOn = new Date(NOW.getTime() + 200 * DAY);
    const moved = await handleSecretEvent(nearExpiry(), deps, ctx());
    vault.versions[0]!.properties.expiresOn = EXP;

    // Act
    const back = await handleSecretEvent(nearExpiry('cosmos-key', 'v1', 'evt-1-redelivered'), deps, ctx());

    // Assess
    expect(moved).toMatchObject({ status: 'skipped' });
    expect(back).toMatchObject({ status: 'handled', outcome: 'succeeded' });
  });

  it('acts when the current version is ambiguous: versions created in the same second', async () => {
    // Prepare: listed in version-id order (aaa before v1), both created within one second
    vault.versions.length = 0;
    const second = new Date('2026-02-01T10:00:00Z');
    for (const version of ['aaa', 'v1']) {
      vault.add({
        vaultUrl: VAULT,
        name: 'cosmos-key',
        version,
        expiresOn: EXP,
        createdOn: new Date(second.getTime() + (version === 'v1' ? 400 : 0)),
        enabled: true,
      });
    }

    // Act
    const forV1 = await handleSecretEvent(nearExpiry('cosmos-key', 'v1'), deps, ctx());
    const forAaa = await handleSecretEvent(nearExpiry('cosmos-key', 'aaa', 'evt-a'), deps, ctx());

    // Assess
    expect(forV1).toMatchObject({ status: 'handled', outcome: 'succeeded' });
    expect(forAaa).toMatchObject({ status: 'handled', outcome: 'succeeded' });
    expect(audit.records[0]!.before).toMatchObject({ currentCandidates: ['aaa', 'v1'] });
  });

  it('reports a certificate-backed secret as certificate-managed, never as a secret to rotate', async () => {
    // Prepare
    vault.versions[0]!.properties.managed = true;

    // Act
    const result = await handleSecretEvent(nearExpiry(), deps, ctx());

    // Assess
    expect(result).toMatchObject({ status: 'handled', outcome: 'reported' });
    const sent = notifier.sent[0]!.notification;
    expect(sent.title).toBe('Certificate-backed secret near expiry: cosmos-key in contoso-kv');
    expect(sent.summary).toMatch(/renewed by the certificate's policy/);
    expect(sent.facts.Managed).toBe('certificate');
    expect(sent.data).toMatchObject({ certificateManaged: true });
    expect(audit.records[0]!.reason).toMatch(/certificate-backed/);
  });

  it('handles a near-expiry event arriving after the expiry as the expired event, once', async () => {
    // Prepare
    clock.advance(30 * DAY);
    const expired = parseSecretEvent(
      secretEvent({
        id: 'evt-exp',
        type: 'Microsoft.KeyVault.SecretExpired',
        vault: 'contoso-kv',
        name: 'cosmos-key',
        version: 'v1',
        exp: EXP.getTime() / 1000,
      }),
    );

    // Act
    const late = await handleSecretEvent(nearExpiry(), deps, ctx());
    const real = await handleSecretEvent(expired, deps, ctx());

    // Assess
    expect(late).toMatchObject({ status: 'handled', outcome: 'succeeded' });
    expect(real.status).toBe('duplicate');
    expect(notifier.sent.map((s) => s.notification.type)).toEqual([
      'com.stampkeeper.secret.expired',
      'com.stampkeeper.secret.expired',
    ]);
    expect(audit.records.map((r) => r.action)).toEqual(['secret.expired.notify']);
  });

  it('rejects an event naming a vault the app may not call, with no call to it', async () => {
    // Prepare
    const steering = parseSecretEvent(
      secretEvent({
        id: 'evt-x',
        type: 'Microsoft.KeyVault.SecretNearExpiry',
        vault: 'attacker',
        exp: EXP.getTime() / 1000,
      }),
    );

    // Act
    const result = await handleSecretEvent(steering, deps, ctx());

    // Assess
    expect(result).toMatchObject({ status: 'rejected' });
    expect(vault.calls).toEqual([]);
    expect(notifier.sent).toHaveLength(0);
    expect([...rejections.buckets.values()]).toEqual([
      expect.objectContaining({ kind: 'event', source: 'other', reason: 'vault-not-allowed', count: 1 }),
    ]);
  });

  it('plans without sending in dry run', async () => {
    const result = await handleSecretEvent(nearExpiry(), deps, { ...ctx(), dryRun: true });
    expect(result).toMatchObject({ outcome: 'planned' });
    expect(notifier.sent).toHaveLength(0);
  });

  it('on a transient channel failure throws retryable and the retry re-sends only the failed channel', async () => {
    notifier.failures.set('ops-teams', [{ retryable: true }]);
    await expect(handleSecretEvent(nearExpiry(), deps, ctx())).rejects.toBeInstanceOf(TransientError);
    expect(audit.records).toHaveLength(0);
    const retry = await handleSecretEvent(nearExpiry(), deps, ctx());
    expect(retry).toMatchObject({ status: 'handled', outcome: 'succeeded' });
    expect(notifier.sent.map((s) => s.channel).sort()).toEqual(['ops-events', 'ops-teams']);
    expect(audit.records).toHaveLength(1);
  });

  it('records a permanent channel failure as failed without retrying forever', async () => {
    notifier.failures.set('ops-teams', [{ retryable: false }]);
    const result = await handleSecretEvent(nearExpiry(), deps, ctx());
    expect(result).toMatchObject({ outcome: 'failed' });
    expect(await handleSecretEvent(nearExpiry(), deps, ctx())).toMatchObject({ status: 'duplicate' });
  });

  it('answers a retryable conflict while another attempt holds the event', async () => {
    await deps.idempotency.claim(
      `secret-event|secret.nearExpiry|${VAULT}|cosmos-key|v1|${EXP.getTime() / 1000}`,
      {
        owner: 'other',
        leaseMs: 60_000,
      },
    );
    await expect(handleSecretEvent(nearExpiry(), deps, ctx())).rejects.toBeInstanceOf(InProgressError);
    expect(notifier.sent).toHaveLength(0);
  });

  it('acts on an event after a dry run of it: the dry run is remembered apart', async () => {
    const planned = await handleSecretEvent(nearExpiry(), deps, { ...ctx(), dryRun: true });
    const real = await handleSecretEvent(nearExpiry(), deps, ctx());
    expect(planned).toMatchObject({ outcome: 'planned' });
    expect(real).toMatchObject({ status: 'handled', outcome: 'succeeded' });
    expect(notifier.sent).toHaveLength(2);
    expect(audit.records.map((r) => r.outcome).sort()).toEqual(['planned', 'succeeded']);
  });

  it('notifies again when the expiry of the same version was moved and nears again', async () => {
    await handleSecretEvent(nearExpiry(), deps, ctx());
    const moved = new Date(EXP.getTime() + 10 * DAY);
    vault.versions[0]!.properties.expiresOn = moved;
    clock.advance(12 * DAY);
    const again = parseSecretEvent(
      secretEvent({
        id: 'evt-9',
        type: 'Microsoft.KeyVault.SecretNearExpiry',
        vault: 'contoso-kv',
        name: 'cosmos-key',
        version: 'v1',
        exp: moved.getTime() / 1000,
      }),
    );
    expect(await handleSecretEvent(again, deps, ctx())).toMatchObject({
      status: 'handled',
      outcome: 'succeeded',
    });
    expect(notifier.sent).toHaveLength(4);
  });

  it('audits a failure no retry will mend once, then lets the caller settle it', async () => {
    deps.vault = Object.assign(Object.create(vault), {
      // biome-ignore lint/correctness/useYield: it fails before its first item
      listSecretVersions: async function* () {
        throw new ForbiddenError('listing versions of secret cosmos-key: access denied (403)');
      },
    });
    await expect(handleSecretEvent(nearExpiry(), deps, ctx())).rejects.toBeInstanceOf(ForbiddenError);
    await expect(handleSecretEvent(nearExpiry(), deps, ctx())).rejects.toBeInstanceOf(ForbiddenError);
    expect(audit.records).toEqual([
      expect.objectContaining({
        action: 'secret.nearExpiry.notify',
        outcome: 'failed',
        reason: expect.stringMatching(/access denied/),
      }),
    ]);
    expect(notifier.sent).toHaveLength(0);
  });

  it('treats a programming error as not retryable: audited once, never redelivered for a day', async () => {
    // Prepare
    deps.vault = Object.assign(Object.create(vault), {
      // biome-ignore lint/correctness/useYield: it fails before its first item
      listSecretVersions: async function* () {
        throw new TypeError("Cannot read properties of undefined (reading 'version')");
      },
    });

    // Act
    const attempt = handleSecretEvent(nearExpiry(), deps, ctx());

    // Assess
    await expect(attempt).rejects.toBeInstanceOf(TypeError);
    const error = await attempt.catch((e: unknown) => e);
    expect(isRetryable(error)).toBe(false);
    expect(audit.records).toEqual([
      expect.objectContaining({ outcome: 'failed', before: expect.objectContaining({ error: 'TypeError' }) }),
    ]);
  });

  it('counts rejected events per source and reason, one audit record per bucket, keeping no payload', async () => {
    // Prepare
    const raws = Array.from({ length: 50 }, (_, i) =>
      secretEvent({ id: `bad-${i}`, type: 'Microsoft.KeyVault.KeyNearExpiry', vault: 'contoso-kv' }),
    );

    // Act
    for (const raw of raws) {
      let error: ValidationError | undefined;
      try {
        parseSecretEvent(raw);
      } catch (e) {
        error = e as ValidationError;
      }
      await recordRejectedEvent(raw, error!, deps, { actor: 'system:eventgrid', correlationId: 'c' });
    }

    // Assess
    expect(audit.records).toHaveLength(1);
    expect(audit.records[0]).toMatchObject({
      outcome: 'rejected',
      action: 'event.reject',
      target: 'events/contoso-kv',
    });
    expect([...rejections.buckets.values()]).toEqual([
      expect.objectContaining({ source: 'contoso-kv', reason: 'unhandled-event-type', count: 50 }),
    ]);
    expect(JSON.stringify(audit.records[0])).not.toContain('vault.azure.net');
  });

  it('labels the source of a rejected event from a vault the app does not know as other', async () => {
    // Prepare
    const raw = secretEvent({ id: 'junk', type: 'Nonsense', vault: 'random-vault' });
    let error: ValidationError | undefined;
    try {
      parseSecretEvent(raw);
    } catch (e) {
      error = e as ValidationError;
    }

    // Act
    const result = await recordRejectedEvent(raw, error!, deps, {
      actor: 'system:eventgrid',
      correlationId: 'c',
    });

    // Assess
    expect(result).toMatchObject({ source: 'other' });
  });
});
