import { beforeEach, describe, expect, it } from 'vitest';
import {
  ConflictError,
  ForbiddenError,
  TransientError,
  type ValidationError,
} from '../../../src/lib/core/errors';
import { silentLogger } from '../../../src/lib/core/logging';
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
  let n = 0;
  const ctx = () => ({ actor: 'system:eventgrid', correlationId: 'corr-1', attemptId: `attempt-${++n}` });

  beforeEach(() => {
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
    deps = {
      vault,
      notifier,
      audit,
      idempotency: new MemoryIdempotency(clock),
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

  it('skips a stale event whose version was already replaced, sending nothing', async () => {
    vault.add({
      vaultUrl: VAULT,
      name: 'cosmos-key',
      version: 'v2',
      expiresOn: new Date(NOW.getTime() + 90 * DAY),
      createdOn: new Date('2026-02-01'),
    });
    const result = await handleSecretEvent(nearExpiry(), deps, ctx());
    expect(result).toMatchObject({ status: 'handled', outcome: 'skipped' });
    expect(notifier.sent).toHaveLength(0);
    expect(audit.records[0]!.reason).toMatch(/newer version \(v2\)/);
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
    await expect(handleSecretEvent(nearExpiry(), deps, ctx())).rejects.toBeInstanceOf(ConflictError);
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
      getSecretProperties: async () => {
        throw new ForbiddenError('reading secret cosmos-key: access denied (403)');
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

  it('records a rejected event once per event id, keeping no payload', async () => {
    const raw = secretEvent({ id: 'bad-1', type: 'Microsoft.KeyVault.KeyNearExpiry' });
    let error: ValidationError | undefined;
    try {
      parseSecretEvent(raw);
    } catch (e) {
      error = e as ValidationError;
    }
    await recordRejectedEvent(raw, error!, deps, { actor: 'system:eventgrid', correlationId: 'c' });
    await recordRejectedEvent(raw, error!, deps, { actor: 'system:eventgrid', correlationId: 'c2' });
    expect(audit.records).toHaveLength(1);
    expect(audit.records[0]).toMatchObject({
      outcome: 'rejected',
      action: 'event.reject',
      target: 'events/newsecret',
    });
    expect(JSON.stringify(audit.records[0])).not.toContain('vault.azure.net');
  });
});
