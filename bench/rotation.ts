/**
 * Rotation and the sweep, measured on the sandbox (issue 8, section 7). Prints:
 *
 * 1. Remote calls of one rotation per provider (Cosmos DB, Storage, Service Bus), counted from the
 *    sandbox's request log (Key Vault, Resource Manager, data plane; the consumer's roll apart), next
 *    to the minimum the APIs allow (docs/bench.md explains each minimum), and the wall time of the
 *    run's steps (configured waits, which are sandbox time, excluded).
 * 2. The safety-net sweep over 1,000 managed secrets in one vault: Key Vault transactions, the peak
 *    per 10-second window of machine time (Key Vault's throttle counts 4,000 per 10 s per vault; the
 *    sweep's budget is a tenth of it), wall time.
 * 3. A burst over Key Vault's limit: 429s, and the requests the adapter sends per call (no hammering).
 *
 * The rotation runs on the real run engine (state on an in-memory Azurite), the real key providers,
 * roller and Key Vault adapter over the sandbox; the bench plays the queue trigger itself and moves
 * the sandbox clock to the end of each wait. Figures only, never assertions.
 *
 * Run alone with `npx tsx bench/rotation.ts`, or `npm run bench -- rotation`.
 */
import { performance } from 'node:perf_hooks';
import { rotationAdapters } from '../src/lib/app/rotationWiring';
import { KeyVaultSecretVault } from '../src/lib/azure/keyVaultSecrets';
import type { Platform } from '../src/lib/azure/platform';
import { parsePolicy } from '../src/lib/config/policy';
import { newId } from '../src/lib/core/ids';
import { silentLogger } from '../src/lib/core/logging';
import { createNotifier } from '../src/lib/notify/notifier';
import type { Notification, NotificationChannel } from '../src/lib/ports/notifier';
import { rotationKind } from '../src/lib/rotation/rotation';
import { announceRotation, startRotation } from '../src/lib/rotation/startRotation';
import {
  type ManagedSecretPolicyView,
  SWEEP_KEY_VAULT_BUDGET,
  sweepSecrets,
} from '../src/lib/rotation/sweepSecrets';
import { createRunEngine, handleWorkMessage, isTerminal, type RunEngine } from '../src/lib/runs';
import { createStateStores, type StateStores } from '../src/lib/state';
import { createSandbox, type Sandbox, type SandboxRequestRecord, type Scenario } from '../src/local/sandbox';
import { type RunningAzurite, startAzurite } from '../test/support/azurite';

const SUB = '00000000-0000-0000-0000-000000000000';
const RG = 'rg-bench';
const VAULT = 'kv-rotation-bench';
const DAY_MS = 86_400_000;
const WINDOW_MS = 10_000;
const COSMOS_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-bench`;
const STORAGE_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Storage/storageAccounts/stbench`;
const SB_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.ServiceBus/namespaces/sb-bench/authorizationRules/RootManageSharedAccessKey`;
const appId = (name: string) =>
  `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.App/containerApps/${name}`;

interface Provider {
  label: string;
  secret: string;
  provider: string;
  resourceId: string;
  resource: string;
  key: string;
  format: 'key' | 'connectionString';
  app: string;
  /** The fewest calls the APIs allow for one rotation (docs/bench.md, "bench/rotation.ts"). */
  minimum: { keyVault: number; arm: number; dataPlane: number };
}

const PROVIDERS: Provider[] = [
  {
    label: 'Cosmos DB',
    secret: 'cosmos-key',
    provider: 'cosmosDbKeys',
    resourceId: COSMOS_ID,
    resource: 'cosmosDb/cosmos-bench',
    key: 'primaryMasterKey',
    format: 'key',
    app: 'ca-cosmos',
    minimum: { keyVault: 3, arm: 4, dataPlane: 1 },
  },
  {
    label: 'Storage',
    secret: 'storage-key',
    provider: 'storageAccountKeys',
    resourceId: STORAGE_ID,
    resource: 'storage/stbench',
    key: 'key1',
    format: 'connectionString',
    app: 'ca-storage',
    minimum: { keyVault: 3, arm: 2, dataPlane: 1 },
  },
  {
    label: 'Service Bus',
    secret: 'servicebus-key',
    provider: 'serviceBusSasKeys',
    resourceId: SB_ID,
    resource: 'serviceBus/sb-bench/RootManageSharedAccessKey',
    key: 'primaryKey',
    format: 'connectionString',
    app: 'ca-servicebus',
    minimum: { keyVault: 3, arm: 2, dataPlane: 1 },
  },
];

/** Minimum calls of the Container Apps roll: read the app (its revision), restart it, read the revision once. */
const ROLL_MINIMUM = 3;

class RecordingChannel implements NotificationChannel {
  readonly kind = 'recording';
  readonly sent: Notification[] = [];
  constructor(readonly name: string) {}
  async send(notification: Notification): Promise<void> {
    this.sent.push(notification);
  }
}

export async function main(): Promise<void> {
  const azurite = await startAzurite();
  try {
    await benchRotations(azurite);
    await benchSweep(azurite);
    await benchBurst();
  } finally {
    await azurite.stop();
  }
}

// --- 1. One rotation per provider -------------------------------------------------------------

function rotationScenario(): Scenario {
  return {
    seed: 'rotation-bench',
    clock: { start: '2026-01-01T00:00:00Z' },
    azure: { subscriptionId: SUB, resourceGroup: RG },
    arm: {
      cosmosDbAccounts: [{ name: 'cosmos-bench' }],
      storageAccounts: [{ name: 'stbench' }],
      serviceBusNamespaces: [
        {
          name: 'sb-bench',
          authorizationRules: [{ name: 'RootManageSharedAccessKey', rights: ['Listen', 'Send', 'Manage'] }],
        },
      ],
      containerApps: PROVIDERS.map((p) => ({ name: p.app })),
    },
    keyVault: {
      vaults: [
        {
          name: VAULT,
          secrets: PROVIDERS.map((p) => ({
            name: p.secret,
            valueFrom: { resource: p.resource, key: p.key, format: p.format },
            expiresInDays: 60,
            tags: {
              'stampkeeper-provider': p.provider,
              'stampkeeper-resource': p.resourceId,
              'stampkeeper-key': 'primary',
            },
          })),
        },
      ],
    },
    consumers: PROVIDERS.map((p) => ({
      name: `${p.app}-worker`,
      kind: 'containerApp',
      app: p.app,
      credential: { vault: VAULT, secret: p.secret, resource: p.resource },
      roll: { seconds: 60 },
    })),
  };
}

function rotationPolicyText(): string {
  const secrets = PROVIDERS.map(
    (p) => `  - vault: ${VAULT}
    name: ${p.secret}
    owner: bench
    rotation:
      provider: ${p.provider}
      resourceId: ${p.resourceId}
      publish: ${p.format}
      consumers:
        - type: containerApp
          resourceId: ${appId(p.app)}
`,
  ).join('');
  return `version: 1
secrets:
${secrets}deadLetters: []
playbooks: []
schedules:
  secretSweep: "0 0 */6 * * *"
notifications:
  defaults: [ops]
  channels:
    - name: ops
      type: webhook
      urlSetting: OPS_WEBHOOK_URL
`;
}

interface RotationFigures {
  state: string;
  requests: SandboxRequestRecord[];
  /** The requests each step made (a step run several times, e.g. verify while a roll is under way, adds up). */
  byStep: Map<string, SandboxRequestRecord[]>;
  stepWallMs: number;
  invocations: number;
}

async function benchRotations(azurite: RunningAzurite): Promise<void> {
  const sandbox = createSandbox({ scenario: rotationScenario() });
  const policy = parsePolicy(rotationPolicyText(), 'bench policy');
  const stores = await freshStores(azurite, sandbox, 'rot');
  const engine = rotationEngine(sandbox, stores);
  console.log(
    'One rotation (alternate mode, one Container Apps consumer), per provider: remote calls and time',
  );
  console.log(
    '  calls counted from the sandbox request log; "min" = the fewest the APIs allow (docs/bench.md); time = wall time of the run\'s steps, waits excluded',
  );
  for (const provider of PROVIDERS) {
    // The first rotation loads the provider's SDK (and, the very first, the Key Vault client's token):
    // reported as cold; the second is the steady state.
    const cold = await rotateOnce(sandbox, stores, engine, policy, provider);
    const warm = await rotateOnce(sandbox, stores, engine, policy, provider);
    printRotation(provider, cold, warm);
  }
  console.log(`  downtime recorded by the simulated consumers: ${sandbox.downtime().totalMs} ms`);
}

function rotationEngine(sandbox: Sandbox, stores: StateStores): RunEngine {
  const platform: Platform = {
    credential: sandbox.credential,
    httpClient: sandbox.httpClient,
    webhookClient: sandbox.httpClient,
    clock: sandbox.clock,
    kind: 'sandbox',
  };
  const adapters = rotationAdapters(platform);
  const channel = new RecordingChannel('ops');
  const notifier = createNotifier([{ channel, minSeverity: 'info' }], silentLogger);
  return createRunEngine({
    runs: stores.runs,
    queue: stores.workQueue,
    audit: stores.audit,
    clock: sandbox.clock,
    logger: silentLogger,
    kinds: [
      rotationKind({
        vault: new KeyVaultSecretVault(sandbox.credential, { httpClient: sandbox.httpClient }),
        keys: adapters.keys,
        rollerFor: adapters.rollerFor,
        settingValue: () => undefined,
        announce: (run, summary, abortSignal) =>
          announceRotation(
            run,
            summary,
            {
              notifier,
              idempotency: stores.idempotency,
              audit: stores.audit,
              clock: sandbox.clock,
              environment: 'bench',
              idempotencyTtlMs: DAY_MS,
              claimLeaseMs: 60_000,
            },
            abortSignal,
          ),
      }),
    ],
    notify: {
      notifier,
      idempotency: stores.idempotency,
      defaultChannels: ['ops'],
      idempotencyTtlMs: DAY_MS,
      claimLeaseMs: 60_000,
    },
    // The bench moves the sandbox clock to each wait's end itself: messages show at once.
    options: { maxQueueDelayMs: 1 },
  });
}

/** Starts a manual rotation and plays the queue trigger until it ends; times the step invocations only. */
async function rotateOnce(
  sandbox: Sandbox,
  stores: StateStores,
  engine: RunEngine,
  policy: ReturnType<typeof parsePolicy>,
  provider: Provider,
): Promise<RotationFigures> {
  const before = sandbox.requests().length;
  let stepWallMs = 0;
  let invocations = 0;
  const byStep = new Map<string, SandboxRequestRecord[]>();
  const t0 = performance.now();
  const started = await startRotation(
    {
      vaultUrl: sandbox.keyVault.vaultUrl(VAULT),
      secretName: provider.secret,
      trigger: 'manual',
      actor: 'bench',
      correlationId: newId(),
    },
    { engine, policy, clock: sandbox.clock, logger: silentLogger },
  );
  stepWallMs += performance.now() - t0;
  if (started.status === 'halted') throw new Error(`rotation of ${provider.secret} is halted`);
  const runId = started.run.id;
  const giveUp = Date.now() + 120_000;
  for (;;) {
    const run = await engine.getRun(runId);
    if (!run) throw new Error(`run ${runId} vanished`);
    if (isTerminal(run.state)) {
      return {
        state: run.state,
        requests: sandbox.requests().slice(before),
        byStep,
        stepWallMs,
        invocations,
      };
    }
    if (Date.now() > giveUp) throw new Error(`rotation of ${provider.secret} did not end (${run.state})`);
    const received = await stores.workQueue.receive({ maxMessages: 32, visibilityTimeoutMs: 30_000 });
    if (received.length === 0) {
      await new Promise((r) => setTimeout(r, 5));
      continue;
    }
    for (const item of received) {
      // A wait (a roll in progress, a backoff) is sandbox time: move the clock to its end, untimed.
      const current = await engine.getRun(runId);
      const due = current?.dueOn?.getTime();
      if (due !== undefined && due > sandbox.clock.now().getTime())
        await sandbox.advance({ to: new Date(due).toISOString() });
      const start = performance.now();
      const sent = sandbox.requests().length;
      try {
        const outcome = await handleWorkMessage(
          engine,
          item.message ?? 'not a work message',
          { messageId: item.messageId, invocationId: newId() },
          silentLogger,
        );
        stepWallMs += performance.now() - start;
        const step = outcome?.step ?? '(engine)';
        byStep.set(step, [...(byStep.get(step) ?? []), ...sandbox.requests().slice(sent)]);
        invocations++;
        await stores.workQueue.delete(item);
      } catch {
        stepWallMs += performance.now() - start;
        invocations++;
        await stores.workQueue.release(item);
      }
    }
  }
}

interface CallCounts {
  keyVault: number;
  challenges: number;
  listKeys: number;
  regenerate: number;
  lroPolls: number;
  armOther: number;
  dataPlane: number;
  roll: number;
  other: number;
}

function classify(requests: SandboxRequestRecord[]): CallCounts {
  const c: CallCounts = {
    keyVault: 0,
    challenges: 0,
    listKeys: 0,
    regenerate: 0,
    lroPolls: 0,
    armOther: 0,
    dataPlane: 0,
    roll: 0,
    other: 0,
  };
  for (const r of requests) {
    const path = r.path.toLowerCase();
    if (r.service === 'keyvault') {
      if (r.status === 401) c.challenges++;
      else c.keyVault++;
    } else if (r.service === 'arm') {
      if (r.status === 401) c.challenges++;
      else if (path.includes('/microsoft.app/')) c.roll++;
      else if (path.endsWith('/listkeys')) c.listKeys++;
      else if (path.endsWith('/regeneratekey') || path.endsWith('/regeneratekeys')) c.regenerate++;
      else if (path.includes('/operationsstatus/') || path.includes('/operationresults/')) c.lroPolls++;
      else c.armOther++;
    } else if (r.service === 'cosmosdb' || r.service === 'storage-blob' || r.service === 'servicebus') {
      c.dataPlane++;
    } else c.other++;
  }
  return c;
}

function printRotation(provider: Provider, cold: RotationFigures, warm: RotationFigures): void {
  const c = classify(warm.requests);
  const arm = c.listKeys + c.regenerate + c.lroPolls + c.armOther;
  const m = provider.minimum;
  console.log(`${provider.label} (${provider.secret}): ${warm.state}`);
  console.log(`  Key Vault            ${pad(c.keyVault)} (min ${m.keyVault})`);
  console.log(
    `  Resource Manager     ${pad(arm)} (min ${m.arm})  listKeys ${c.listKeys}, regenerate ${c.regenerate}, operation polls ${c.lroPolls}${c.armOther ? `, other ${c.armOther}` : ''}`,
  );
  console.log(`  data plane           ${pad(c.dataPlane)} (min ${m.dataPlane})`);
  console.log(
    `  consumer roll (ARM)  ${pad(c.roll)} (min ${ROLL_MINIMUM})  Container Apps: app, restart, a revision read per check (every 15 s of a 60 s roll)`,
  );
  const steps = [...warm.byStep.entries()]
    .map(([step, requests]) => {
      const s = classify(requests);
      const parts = [
        s.keyVault ? `kv ${s.keyVault}` : '',
        s.listKeys ? `listKeys ${s.listKeys}` : '',
        s.regenerate + s.lroPolls ? `regenerate ${s.regenerate}+${s.lroPolls} polls` : '',
        s.dataPlane ? `data ${s.dataPlane}` : '',
        s.roll ? `roll ${s.roll}` : '',
      ].filter(Boolean);
      return parts.length ? `${step}: ${parts.join(', ')}` : '';
    })
    .filter(Boolean);
  console.log(`  by step              ${steps.join(' | ')}`);
  if (c.challenges || c.other)
    console.log(`  also                 ${c.challenges} auth challenge(s), ${c.other} other`);
  const coldChallenges = classify(cold.requests).challenges;
  console.log(
    `  time, steps only     ${ms(warm.stepWallMs)} in ${warm.invocations} step invocations (first rotation, SDK loading${coldChallenges ? ' and token challenges' : ''}: ${ms(cold.stepWallMs)})`,
  );
}

// --- 2. The sweep over 1,000 managed secrets ---------------------------------------------------

const SWEEP_SECRETS = 1_000;

async function benchSweep(azurite: RunningAzurite): Promise<void> {
  console.log(
    `\nSweep of ${SWEEP_SECRETS} managed secrets in one vault (budget ${SWEEP_KEY_VAULT_BUDGET.transactions} transactions per ${SWEEP_KEY_VAULT_BUDGET.windowMs / 1000} s; Key Vault's limit 4000)`,
  );
  await sweepCase(azurite, 'expiries spread over a year', (i) => 1 + ((i * 7) % 365), 10);
  await sweepCase(azurite, 'every secret inside its 30-day window', (i) => 1 + (i % 29), 0);
}

async function sweepCase(
  azurite: RunningAzurite,
  label: string,
  expiresInDays: (i: number) => number,
  withoutExpiry: number,
): Promise<void> {
  const name = (i: number) => `managed-${String(i).padStart(4, '0')}`;
  const sandbox = createSandbox({
    scenario: {
      seed: 'sweep-bench',
      clock: { start: '2026-01-01T00:00:00Z' },
      keyVault: {
        vaults: [
          {
            name: VAULT,
            secrets: Array.from({ length: SWEEP_SECRETS }, (_, i) => ({
              name: name(i),
              // A few managed secrets have no expiry: the sweep reports them (a disagreement).
              ...(i < withoutExpiry ? {} : { expiresInDays: expiresInDays(i) }),
            })),
          },
        ],
      },
    },
  });
  const vaultUrl = sandbox.keyVault.vaultUrl(VAULT);
  const stores = await freshStores(azurite, sandbox, 'swp');
  const channel = new RecordingChannel('ops');
  const managed: ManagedSecretPolicyView[] = Array.from({ length: SWEEP_SECRETS }, (_, i) => ({
    name: name(i),
    owner: 'bench',
    channels: ['ops'],
    rotation: { provider: 'manual' },
  }));
  const t0 = performance.now();
  const summary = await sweepSecrets(
    {
      vault: new KeyVaultSecretVault(sandbox.credential, { httpClient: sandbox.httpClient }),
      notifier: createNotifier([{ channel, minSeverity: 'info' }], silentLogger),
      audit: stores.audit,
      idempotency: stores.idempotency,
      rejections: stores.rejections,
      clock: sandbox.clock,
      logger: silentLogger,
      policy: {
        lookup: () => ({ owner: 'bench', channels: ['ops'], rotation: 'manual' }),
        defaultChannels: () => ['ops'],
        managedVaults: () => [vaultUrl],
        vaultAllowed: (url) => url === vaultUrl,
      },
      managedSecrets: () => managed,
      environment: 'bench',
      dryRun: false,
      idempotencyTtlMs: DAY_MS,
      claimLeaseMs: 60_000,
    },
    { actor: 'system:timer', correlationId: newId(), attemptId: newId() },
  );
  const wallMs = performance.now() - t0;
  const log = sandbox.keyVault.requests().filter((r) => r.authenticated);
  const pages = log.filter((r) => r.path === '/secrets').length;
  const versions = log.filter((r) => r.path.endsWith('/versions')).length;
  const throttled = log.filter((r) => r.status === 429).length;
  console.log(`  ${label}`);
  console.log(
    `    Key Vault transactions     ${log.length} = ${pages} listing pages + ${versions} version listings (${(log.length / SWEEP_SECRETS).toFixed(2)} per secret); 429s ${throttled}`,
  );
  console.log(
    `    peak per 10 s (wall)       ${peakPerWindow(
      log.map((r) => r.wallMs),
      WINDOW_MS,
    )} (budget ${SWEEP_KEY_VAULT_BUDGET.transactions}, Key Vault's limit 4000 = ${(
      (peakPerWindow(
        log.map((r) => r.wallMs),
        WINDOW_MS,
      ) /
        4000) *
        100
    ).toFixed(1)}% of it)`,
  );
  console.log(
    `    handled / disagreements    ${summary.handled} near expiry or expired, ${summary.disagreements.reported} reported; failures ${summary.failures.length}`,
  );
  console.log(`    wall time                  ${ms(wallMs)}`);
}

// --- 3. A burst over Key Vault's limit ---------------------------------------------------------

const BURST = 4_400;

async function benchBurst(): Promise<void> {
  console.log(`\nBurst of ${BURST} reads at once on one vault (Key Vault's limit: 4000 per 10 s)`);
  for (const retryAfter of [false, true]) {
    const sandbox = createSandbox({
      scenario: {
        clock: { start: '2026-01-01T00:00:00Z' },
        keyVault: {
          throttling: { retryAfter },
          vaults: [{ name: VAULT, secrets: [{ name: 'db', expiresInDays: 90 }] }],
        },
      },
    });
    const vault = new KeyVaultSecretVault(sandbox.credential, { httpClient: sandbox.httpClient });
    const vaultUrl = sandbox.keyVault.vaultUrl(VAULT);
    await vault.getSecretProperties(vaultUrl, 'db'); // the token, once
    const before = sandbox.keyVault.requests().length;
    const t0 = performance.now();
    const outcomes = await Promise.all(
      Array.from({ length: BURST - 1 }, () =>
        vault.getSecretProperties(vaultUrl, 'db').then(
          () => true,
          () => false,
        ),
      ),
    );
    const wallMs = performance.now() - t0;
    const log = sandbox.keyVault.requests().slice(before);
    const ok = outcomes.filter(Boolean).length + 1;
    console.log(
      `  429 ${retryAfter ? 'with Retry-After (seconds to a free slot)' : 'without Retry-After (as Key Vault answers)'}`,
    );
    console.log(
      `    calls ok / failed (retryable)  ${ok} / ${BURST - ok}; requests sent ${log.length + 1} (${((log.length + 1) / BURST).toFixed(2)} per call; at most 3 by design); 429s ${log.filter((r) => r.status === 429).length}; wall time ${ms(wallMs)}`,
    );
  }
}

// --- helpers ------------------------------------------------------------------------------------

async function freshStores(azurite: RunningAzurite, sandbox: Sandbox, label: string): Promise<StateStores> {
  const prefix = `bench${label}${newId()
    .replace(/[^a-z0-9]/gi, '')
    .slice(0, 8)}`.toLowerCase();
  const stores = createStateStores({
    connectionString: azurite.connectionString,
    tablePrefix: prefix,
    workQueueName: `${prefix}-work`,
    clock: sandbox.clock,
  });
  await stores.ensure();
  return stores;
}

/** The most timestamps inside any half-open window of `windowMs`. */
function peakPerWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

const pad = (n: number) => String(n).padStart(3);
const ms = (value: number) => (value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(0)} ms`);

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
