/**
 * Support of the rotation integration tests: the real `rotation` run kind, wired as the app wires
 * it (the real key providers and consumer rollers over the real ARM SDK clients, the real Key Vault
 * adapter, `announceRotation`), on the real run engine over Azurite, against a sandbox estate built
 * per test. A driver plays the worker: it runs the current step as a redelivered message would
 * (`executeStep`, the lease owned by the message and its ticket) and moves the sandbox clock to the
 * run's next due time, so that waits cost no wall time. Faults are injected around the real run
 * store (a recording write that never happens: the process died between a step's effect and its
 * record) and by dropping the next message (the process died after the record).
 */

import { rotationAdapters } from '../../../src/lib/app/rotationWiring';
import { KeyVaultSecretVault } from '../../../src/lib/azure/keyVaultSecrets';
import type { Platform } from '../../../src/lib/azure/platform';
import { channelsFor, findManagedSecret, type Policy, parsePolicy } from '../../../src/lib/config/policy';
import { TransientError } from '../../../src/lib/core/errors';
import { newId } from '../../../src/lib/core/ids';
import { createLogger, type Logger } from '../../../src/lib/core/logging';
import { createNotifier } from '../../../src/lib/notify/notifier';
import type { SecretEventDeps } from '../../../src/lib/rotation/handleSecretEvent';
import { parseSecretEvent, type SecretEvent } from '../../../src/lib/rotation/keyVaultEvent';
import { registerRollCallback, webhookCallbacks } from '../../../src/lib/rotation/rollCallbacks';
import { ROTATION_DEADLINE_MS, type RotationDeps, rotationKind } from '../../../src/lib/rotation/rotation';
import {
  announceRotation,
  type StartRotationRequest,
  type StartRotationResult,
  startRotation,
} from '../../../src/lib/rotation/startRotation';
import { clearPendingResults, isTerminal, type Run, RunEngine } from '../../../src/lib/runs';
import type { StateStores } from '../../../src/lib/state';
import { createSandbox, type Sandbox, type Scenario } from '../../../src/local/sandbox';
import { freshStores, QueueTrigger, RecordingChannel } from '../runs/support';

export const SUB = '00000000-0000-0000-0000-000000000000';
export const RG = 'rg-rotation';
export const VAULT = 'kv-rotation';
export const VAULT_URL = `https://${VAULT}.vault.azure.net`;
export const arm = (type: string, name: string) =>
  `/subscriptions/${SUB}/resourceGroups/${RG}/providers/${type}/${name}`;
export const COSMOS_ID = arm('Microsoft.DocumentDB/databaseAccounts', 'cosmos-rot');
export const STORAGE_ID = arm('Microsoft.Storage/storageAccounts', 'strotation');
export const BUS_ID = arm('Microsoft.ServiceBus/namespaces', 'sb-rotation-ns');
export const CLUSTER_ID = arm('Microsoft.ContainerService/managedClusters', 'aks-rot');
export const APP_ID = arm('Microsoft.App/containerApps', 'ca-rot');
export const SITE_ID = arm('Microsoft.Web/sites', 'app-rot');

/** The ARM estate every test shares: one resource of each kind the rotation touches. */
export const ESTATE: NonNullable<Scenario['arm']> = {
  cosmosDbAccounts: [{ name: 'cosmos-rot', resourceGroup: RG }],
  storageAccounts: [{ name: 'strotation', resourceGroup: RG }],
  serviceBusNamespaces: [
    {
      name: 'sb-rotation-ns',
      resourceGroup: RG,
      authorizationRules: [{ name: 'RootManageSharedAccessKey', rights: ['Listen', 'Send', 'Manage'] }],
      queues: [{ name: 'orders', authorizationRules: [{ name: 'orders-send', rights: ['Send'] }] }],
    },
  ],
  aksClusters: [{ name: 'aks-rot', resourceGroup: RG }],
  containerApps: [{ name: 'ca-rot', resourceGroup: RG }],
  webApps: [{ name: 'app-rot', resourceGroup: RG }],
};

/** What a test changes about the world. */
export interface WorldOptions {
  /** The vault's secrets (a `rotation` section of the scenario's `keyVault.vaults[0]`). */
  secrets: NonNullable<NonNullable<Scenario['keyVault']>['vaults']>[number]['secrets'];
  consumers?: Scenario['consumers'];
  /** The policy's `secrets:` entries, as YAML (indented by two spaces, under `secrets:`). */
  policy: string;
  /** App settings (webhook and health URLs of consumers). */
  settings?: Record<string, string>;
  /** The run store the engine writes through (fault injection); default the real one. */
  wrapRuns?: (runs: StateStores['runs']) => StateStores['runs'];
  /** Long-running operations stay InProgress for this many status reads. */
  pollsBeforeDone?: number;
  /** The app's base URL for callback webhooks (their completions kept in the real store). */
  callbackBaseUrl?: string;
}

export interface RotationWorld {
  sandbox: Sandbox;
  stores: StateStores;
  engine: RunEngine;
  policy: Policy;
  channel: RecordingChannel;
  logs: string[];
  logger: Logger;
  trigger: QueueTrigger;
  /** Starts a rotation through the real `startRotation` (secret in the test vault). */
  start(secretName: string, request?: Partial<StartRotationRequest>): Promise<StartRotationResult>;
  /** The id of a started (or active) rotation; throws when halted. */
  started(secretName: string, request?: Partial<StartRotationRequest>): Promise<string>;
  /**
   * Plays the worker until the run is over or parks for an approval: runs each due step as its
   * message would, moving the sandbox clock to the next due time. `crash` decides, after each
   * execution, whether the process died before the next message was sent.
   */
  drive(runId: string, options?: DriveOptions): Promise<Run>;
  /** What `handleSecretEvent` and `sweepSecrets` need, starting rotations as the app does. */
  secretEvents(): SecretEventDeps;
  /** The Key Vault events the sandbox raised so far (of one type), parsed as the app parses them. */
  raised(type?: string): SecretEvent[];
  /** Key regenerations of a resource, oldest first (key names). */
  regenerations(resourceId: string): string[];
  /** The secret's versions as the vault lists them (tags included, never values), oldest first. */
  versions(secretName: string): Promise<Array<{ version: string; tags: Record<string, string> }>>;
}

export interface DriveOptions {
  /** Most step executions before giving up (a bug that loops). */
  maxExecutions?: number;
  /** After each execution: true drops the next message (as a process dying after the record would). */
  dropNextMessage?: (executed: Run) => boolean;
}

const quiet = (sink: string[]): Logger =>
  createLogger({
    debug: (line) => sink.push(String(line)),
    info: (line) => sink.push(String(line)),
    warn: (line) => sink.push(String(line)),
    error: (line) => sink.push(String(line)),
  });

/** The sandbox estate, the stores, the engine with the real rotation kind, and the driver. */
export async function rotationWorld(options: WorldOptions): Promise<RotationWorld> {
  const sandbox = createSandbox({
    scenario: {
      seed: 'rotation-tests',
      clock: { start: '2026-03-01T00:00:00Z' },
      azure: { subscriptionId: SUB, resourceGroup: RG },
      keyVault: { vaults: [{ name: VAULT, resourceGroup: RG, secrets: options.secrets }] },
      arm: { ...ESTATE, operations: { pollsBeforeDone: options.pollsBeforeDone ?? 0 } },
      consumers: options.consumers ?? [],
      eventGrid: { subscriptions: [] },
    },
  });
  // The seeded versions exist before the story starts: a version published now is a second later.
  await sandbox.advance({ minutes: 1 });
  const logs: string[] = [];
  const logger = quiet(logs);
  const stores = await freshStores(sandbox.clock);
  const platform: Platform = {
    credential: sandbox.credential,
    httpClient: sandbox.httpClient,
    webhookClient: sandbox.httpClient,
    clock: sandbox.clock,
    kind: 'sandbox',
  };
  const policy = parsePolicy(
    [
      'version: 1',
      'secrets:',
      options.policy,
      'notifications:',
      '  defaults: [ops]',
      '  channels:',
      '    - { name: ops, type: webhook, urlSetting: OPS_WEBHOOK_URL }',
    ].join('\n'),
    'rotation-test-policy',
  );
  const channel = new RecordingChannel('ops');
  const notifier = createNotifier([{ channel, minSeverity: 'info' }], logger);
  const adapters = rotationAdapters(platform, { callbacks: webhookCallbacks(() => stores.rollCallbacks) });
  // Read live: a test may set a missing setting later (as an operator fixing it would).
  const settings = options.settings ?? {};
  settings.OPS_WEBHOOK_URL ??= 'https://ops.example/hook';
  const deps: RotationDeps = {
    vault: new KeyVaultSecretVault(sandbox.credential, { httpClient: sandbox.httpClient }),
    keys: adapters.keys,
    rollerFor: adapters.rollerFor,
    settingValue: (name) => settings[name],
    ...(options.callbackBaseUrl
      ? {
          registerCallback: (runId: string, consumer: string, abortSignal?: AbortSignal) =>
            registerRollCallback(
              { runId, consumer, baseUrl: options.callbackBaseUrl!, ttlMs: ROTATION_DEADLINE_MS },
              { store: stores.rollCallbacks, clock: sandbox.clock },
              abortSignal,
            ),
        }
      : {}),
    announce: (run, summary, abortSignal) =>
      announceRotation(
        run,
        summary,
        {
          notifier,
          idempotency: stores.idempotency,
          audit: stores.audit,
          clock: sandbox.clock,
          environment: 'itest',
          idempotencyTtlMs: 86_400_000,
          claimLeaseMs: 60_000,
        },
        abortSignal,
      ),
  };
  const runs = options.wrapRuns ? options.wrapRuns(stores.runs) : stores.runs;
  const engine = new RunEngine({
    runs,
    queue: stores.workQueue,
    audit: stores.audit,
    clock: sandbox.clock,
    logger,
    kinds: [rotationKind(deps)],
    notify: {
      notifier,
      idempotency: stores.idempotency,
      defaultChannels: ['ops'],
      idempotencyTtlMs: 86_400_000,
      claimLeaseMs: 60_000,
    },
    options: { leaseMs: 10 * 60_000, maxQueueDelayMs: 1_000 },
  });
  const trigger = new QueueTrigger(stores, () => engine, logger);

  const start = (secretName: string, request: Partial<StartRotationRequest> = {}) =>
    startRotation(
      {
        vaultUrl: VAULT_URL,
        secretName,
        trigger: 'manual',
        actor: 'user:tester',
        correlationId: newId(),
        ...request,
      },
      { engine, policy, clock: sandbox.clock, logger },
    );

  const drive = async (runId: string, o: DriveOptions = {}): Promise<Run> => {
    const max = o.maxExecutions ?? 400;
    for (let i = 0; i < max; i++) {
      const run = await engine.getRun(runId);
      if (!run) throw new Error(`run ${runId} does not exist`);
      if (isTerminal(run.state) || run.state === 'awaiting-approval') return run;
      const due = run.dueOn?.getTime() ?? 0;
      const now = sandbox.clock.now().getTime();
      if (due > now) await sandbox.advance({ seconds: (due - now) / 1000 });
      // The message of this ticket: a redelivery of it after a crash is the same owner.
      const owner = `msg:drive:${run.ticket}`;
      try {
        const executed = await engine.executeStep(runId, { owner, ticket: run.ticket });
        const recorded = executed.outcome.run;
        if (recorded && executed.next && o.dropNextMessage?.(recorded)) await recoverLostMessage(runId);
      } catch (error) {
        // The invocation failed: the process is gone with what it held in memory.
        clearPendingResults();
        if (!(error instanceof TransientError)) throw error;
      }
    }
    throw new Error(`run ${runId} did not end in ${max} executions`);
  };

  /** The next message was never sent: the resume timer finds the stalled run and sends it again. */
  const recoverLostMessage = async (runId: string): Promise<void> => {
    const run = (await engine.getRun(runId))!;
    if (isTerminal(run.state) || run.state === 'awaiting-approval') return;
    // Past the run's due time and the stall threshold (5 minutes by default).
    const due = Math.max(run.dueOn?.getTime() ?? 0, sandbox.clock.now().getTime());
    await sandbox.advance({ seconds: (due - sandbox.clock.now().getTime()) / 1000 + 6 * 60 });
    const sweep = await engine.resumeStalledRuns();
    if (!sweep.resumed.includes(runId)) throw new Error(`the resume sweep did not resume ${runId}`);
    // The message the sweep sent, handled as the queue trigger would.
    await trigger.drain();
  };

  return {
    sandbox,
    stores,
    engine,
    policy,
    channel,
    logs,
    logger,
    trigger,
    start,
    async started(secretName, request) {
      const result = await start(secretName, request);
      if (result.status === 'halted') throw new Error(`rotation of ${secretName} is halted`);
      return result.run.id;
    },
    drive,
    secretEvents: () => ({
      vault: deps.vault,
      notifier,
      audit: stores.audit,
      idempotency: stores.idempotency,
      rejections: stores.rejections,
      clock: sandbox.clock,
      logger,
      policy: {
        lookup(vaultUrl, secretName) {
          const managed = findManagedSecret(policy, vaultUrl, secretName);
          if (!managed) return undefined;
          return {
            owner: managed.owner,
            channels: channelsFor(policy, managed).map((c) => c.name),
            rotation: managed.rotation.provider,
          };
        },
        defaultChannels: () => ['ops'],
        managedVaults: () => [VAULT_URL],
        vaultAllowed: (vaultUrl) => vaultUrl === VAULT_URL,
      },
      environment: 'itest',
      dryRun: false,
      idempotencyTtlMs: 86_400_000,
      claimLeaseMs: 60_000,
      startRotation: (request) => startRotation(request, { engine, policy, clock: sandbox.clock, logger }),
    }),
    raised: (type) =>
      sandbox
        .events()
        .filter((e) => type === undefined || e.eventType === type)
        .map((e) => parseSecretEvent(e)),
    regenerations: (resourceId) =>
      sandbox
        .estate()
        .arm.regenerations.filter((r) => r.resourceId.toLowerCase() === resourceId.toLowerCase())
        .map((r) => r.keyName),
    async versions(secretName) {
      const listed: Array<{ version: string; tags: Record<string, string>; created: number }> = [];
      for await (const v of deps.vault.listSecretVersions(VAULT_URL, secretName)) {
        listed.push({ version: v.version!, tags: v.tags, created: v.createdOn?.getTime() ?? 0 });
      }
      return listed.sort((a, b) => a.created - b.created).map(({ version, tags }) => ({ version, tags }));
    },
  };
}

/** The steps of a run as `[name, status]`. */
export const stepsOf = (run: Run) => run.steps.map((s) => [s.name, s.status]);

/** Tags of a seeded version that holds `slot` of `resourceId` for `provider`. */
export function rotationTags(provider: string, resourceId: string, slot: 'primary' | 'secondary') {
  return {
    'stampkeeper-provider': provider,
    'stampkeeper-resource': resourceId,
    'stampkeeper-key': slot,
  };
}

/**
 * A process that dies between a step's effect and its record: the run store never receives the
 * write that records `step` as over (the engine's quick retries of that write included), once.
 * Pass `wrap` as `wrapRuns`; `fired` says whether it happened.
 */
export function crashBeforeRecording(step: string) {
  const state = { fired: 0, last: undefined as string | undefined };
  const wrap = (runs: StateStores['runs']): StateStores['runs'] => {
    const store = Object.create(runs) as StateStores['runs'];
    store.update = async (run, options) => {
      const status = run.steps.find((s) => s.name === step)?.status;
      const recording = state.last === 'running' && status !== 'running' && status !== 'pending';
      // The invocation tries a failed write three times before it gives up and dies.
      if (recording && state.fired < 3) {
        state.fired++;
        throw new TransientError('the worker died before recording the step');
      }
      const written = await runs.update(run, options);
      state.last = status;
      return written;
    };
    return store;
  };
  return {
    wrap,
    get fired() {
      return state.fired > 0;
    },
  };
}

/**
 * Plays the worker for a run of any engine on a sandbox's clock (the app's own engine, from its
 * deps): runs each due step as its message would, until the run is over or parks for an approval.
 */
export async function driveRun(engine: RunEngine, sandbox: Sandbox, runId: string, max = 400): Promise<Run> {
  for (let i = 0; i < max; i++) {
    const run = await engine.getRun(runId);
    if (!run) throw new Error(`run ${runId} does not exist`);
    if (isTerminal(run.state) || run.state === 'awaiting-approval') return run;
    const wait = (run.dueOn?.getTime() ?? 0) - sandbox.clock.now().getTime();
    if (wait > 0) await sandbox.advance({ seconds: wait / 1000 });
    await engine.executeStep(runId, { owner: `msg:drive:${run.ticket}`, ticket: run.ticket });
  }
  throw new Error(`run ${runId} did not end in ${max} executions`);
}
