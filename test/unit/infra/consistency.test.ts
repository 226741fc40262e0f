/**
 * The infrastructure agrees with the code. The Bicep is read as Azure would deploy it: compiled by
 * the real Bicep CLI and evaluated by `bicep snapshot` (Resource Manager's template engine over
 * the compiled JSON, nested module deployments expanded), never by reading Bicep text. The code
 * side is the code itself: the settings it reads (codeSettings.ts), the functions and triggers the
 * real local host registers, the event types it handles, and the committed policy through
 * `npm run infra:params`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  generatePolicyTargets,
  type PolicyTargets,
  REMEDIATION_ROLE_DEFINITIONS,
  type RemediationRoleName,
  ROTATION_ROLE_DEFINITIONS,
  type RotationRoleName,
  STORAGE_ACCOUNT_KEY_OPERATOR,
} from '../../../scripts/infra-params';
import { ROLES } from '../../../src/lib/app/auth';
import { findPlaybook } from '../../../src/lib/config/playbooks';
import { loadPolicy, type Policy } from '../../../src/lib/config/policy';
import { checkPolicyAgainstSettings, validateSettings } from '../../../src/lib/config/settings';
import { SECRET_EVENT_TYPES } from '../../../src/lib/rotation/keyVaultEvent';
import { BUILT_IN_AUTH_EXCLUDED_PATHS, startLocalApp } from '../../../src/local/app';
import { storageConnectionString, uniquePrefix } from '../../support/storage';
import { Partial, Unknown } from './armEval';
import { copyInfra, type Deployment, deploymentOf, ROOT, SCOPE } from './bicep';
import { localHostReads, settingsTheAppReads } from './codeSettings';

const ENVIRONMENTS = ['dev', 'prod'] as const;

/** The environment's Entra app registration, as azd or the pipeline pass it to the parameter files. */
const AUTH = {
  clientId: '3c5f9a7e-1b2d-4c6e-8f0a-2b4d6f8a0c1e',
  objectId: '7d9e1f3a-5b7c-4d9e-8f1a-3b5c7d9e1f2a',
};
const AUTH_ENV = { STAMPKEEPER_AUTH_CLIENT_ID: AUTH.clientId, STAMPKEEPER_AUTH_OBJECT_ID: AUTH.objectId };
/**
 * HTTP functions the platform's callers reach without a token, and why. Everything else is behind
 * built-in authentication.
 */
const PUBLIC_HTTP_FUNCTIONS: Record<string, string> = {
  health: 'the anonymous probe: the deploy smoke test and load balancers call it without a token',
  rollCallback:
    'a pipeline rolled by a callback webhook calls back without an Entra token or the function key: the one-time token of the URL the rotation gave it authenticates it',
};
/** Where Event Grid's AzureFunction endpoint type delivers: the runtime's webhook, with the system key. */
const EVENT_GRID_WEBHOOK = '/runtime/webhooks/eventgrid';

/** Built-in role ids (the same in every tenant), for the expectations. */
const ROLE = {
  keyVaultReader: '21090545-7ca7-4776-b22c-e363652d74d2',
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
  eventGridDataSender: 'd5a91429-5739-47e2-a06b-3470a27159e7',
  serviceBusDataReceiver: '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0',
  serviceBusDataSender: '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39',
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7',
  monitoringReader: '43d0d8ad-25c7-4714-9337-8ba259a9fe05',
  logAnalyticsReader: '73c42c96-874c-492b-b04d-ab87d138a893',
} as const;

/**
 * A dead-letter trigger's Service Bus connection is one of these forms (the sandbox broker's
 * connection string locally, the namespace by identity in Azure); the host alone reads the
 * identity's `__credential` and `__clientId`.
 */
const serviceBusForms = (setting: string) => [[setting], [`${setting}__fullyQualifiedNamespace`]];
const SERVICE_BUS_HOST_SUFFIXES = ['__credential', '__clientId'];

/**
 * Settings read by the Functions host or Core Tools rather than by the app, with where they may
 * appear. Everything else in the sample or the Bicep must be read by the code.
 */
const HOST_SETTINGS: Record<string, { sample: boolean; bicep: boolean; why: string }> = {
  FUNCTIONS_WORKER_RUNTIME: {
    sample: true,
    bicep: false,
    why: 'Core Tools picks the language worker; on Flex Consumption it is functionAppConfig.runtime and may not be an app setting',
  },
  AzureWebJobsFeatureFlags: { sample: true, bicep: false, why: 'host feature flags for Core Tools' },
  AzureWebJobsStorage__credential: { sample: false, bicep: true, why: 'identity-based host storage' },
  AzureWebJobsStorage__clientId: {
    sample: false,
    bicep: true,
    why: 'the user-assigned identity of host storage',
  },
  APPLICATIONINSIGHTS_CONNECTION_STRING: { sample: false, bicep: true, why: 'host telemetry' },
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: {
    sample: false,
    bicep: true,
    why: 'host telemetry with Entra auth',
  },
};
/** Set by the host itself (Core Tools, the Node worker): never configured. */
// Set by the platform, never configured: the script root, and WEBSITE_AUTH_ENABLED, which App
// Service sets when built-in authentication is on (the local host sets it when it emulates that).
const HOST_PROVIDED = new Set(['AzureWebJobsScriptRoot', 'WEBSITE_AUTH_ENABLED']);
/** The storage connection is one of these forms (connection string locally, identity in Azure). */
const STORAGE_FORMS = [
  ['AzureWebJobsStorage'],
  ['AzureWebJobsStorage__accountName'],
  ['AzureWebJobsStorage__tableServiceUri', 'AzureWebJobsStorage__queueServiceUri'],
];

interface Trigger {
  name: string;
  type: string;
  connection?: string;
  queueName?: string;
  topicName?: string;
  subscriptionName?: string;
  route?: string;
  authLevel?: string;
}

const text = (v: unknown): string =>
  v instanceof Unknown || v instanceof Partial ? v.toString() : String(v);
const only = <T>(items: T[], what: string): T => {
  expect(items, what).toHaveLength(1);
  return items[0]!;
};

describe.skipIf(!inject('bicepAvailable'))(
  'infrastructure consistency (compiled ARM JSON evaluated by bicep snapshot)',
  () => {
    let infra: Awaited<ReturnType<typeof copyInfra>>;
    const deployments = new Map<string, Deployment>();
    let unwired: Deployment;
    let policy: Policy;
    let targets: PolicyTargets;
    let sample: Record<string, string>;
    let triggers: Trigger[];
    let routePrefix: string;
    let appReads: Set<string>;

    beforeAll(async () => {
      infra = await copyInfra();
      for (const env of ENVIRONMENTS)
        deployments.set(env, await deploymentOf(infra.dir, `env/${env}.bicepparam`, AUTH_ENV));
      unwired = await deploymentOf(infra.dir, 'env/dev.bicepparam', {
        ...AUTH_ENV,
        STAMPKEEPER_WIRE_FUNCTIONS: 'false',
      });
      policy = await loadPolicy(join(ROOT, 'policy/stampkeeper.policy.yaml'));
      targets = (await generatePolicyTargets({ rootDir: ROOT })).targets;
      sample = JSON.parse(await readFile(join(ROOT, 'local.settings.sample.json'), 'utf8')).Values;

      // The functions and triggers the app registers, as the real local host loads them.
      const prefix = uniquePrefix('infra');
      const app = await startLocalApp({
        port: 0,
        startTimers: false,
        logger: { info: () => {}, warn: () => {}, error: () => {} },
        env: {
          AzureWebJobsStorage: storageConnectionString(),
          STAMPKEEPER_TABLE_PREFIX: prefix,
          STAMPKEEPER_WORK_QUEUE: 'stampkeeper-work',
        },
      });
      try {
        triggers = app.host.functions.map((f) => ({
          name: f.name,
          type: String(f.trigger.type),
          connection: f.trigger['connection'] as string | undefined,
          queueName: f.trigger['queueName'] as string | undefined,
          topicName: f.trigger['topicName'] as string | undefined,
          subscriptionName: f.trigger['subscriptionName'] as string | undefined,
          route: f.trigger['route'] as string | undefined,
          authLevel: f.trigger['authLevel'] as string | undefined,
        }));
        routePrefix = app.host.hostConfig.routePrefix;
      } finally {
        await app.stop();
      }

      const bicepNames = ENVIRONMENTS.flatMap((env) => Object.keys(appSettingsOf(deployments.get(env)!)));
      appReads = settingsTheAppReads(policy, [
        ...Object.keys(sample),
        ...bicepNames,
        ...STORAGE_FORMS.flat(),
        ...targets.serviceBus.connections.flatMap((c) => serviceBusForms(c.setting).flat()),
      ]);
    }, 180_000);

    afterAll(async () => {
      await infra?.dispose();
    });

    function appSettingsOf(deployment: Deployment): Record<string, unknown> {
      const config = only(
        deployment.of('Microsoft.Web/sites/config').filter((r) => r.name.endsWith('/appsettings')),
        'one appsettings resource',
      );
      expect(config.properties, 'app settings evaluated to an object').toBeTypeOf('object');
      return config.properties as Record<string, unknown>;
    }

    function resourceId(deployment: Deployment, type: string, name?: string): string {
      const candidates = deployment.of(type).filter((r) => name === undefined || r.name === name);
      return text(only(candidates, `${type} ${name ?? ''}`).id);
    }

    /** Role assignments as (principal, role, scope). */
    function assignments(deployment: Deployment): string[] {
      return deployment.of('Microsoft.Authorization/roleAssignments').map((r) => {
        const principal = text(r.properties?.principalId);
        const who = /outputs\.appPrincipalId\.value/.test(principal)
          ? 'app'
          : /outputs\.eventsPrincipalId\.value/.test(principal)
            ? 'events'
            : `unknown principal ${principal}`;
        const role = String(r.properties?.roleDefinitionId).split('/').pop();
        // A subscription-scope assignment whose name is known only at deployment: its id stays
        // `${subscriptionResourceId('<subscription>', 'Microsoft.Authorization/roleAssignments', ...)}`.
        const atSubscription =
          /^\$\{subscriptionResourceId\('([^']+)', 'Microsoft\.Authorization\/roleAssignments'/.exec(
            text(r.id),
          );
        const scope = atSubscription
          ? `/subscriptions/${atSubscription[1]}`
          : text(r.id).split('/providers/Microsoft.Authorization/roleAssignments/')[0];
        return `${who} ${role} ${scope}`;
      });
    }

    const formGroups = () => [
      STORAGE_FORMS,
      ...targets.serviceBus.connections.map((c) => serviceBusForms(c.setting)),
    ];
    const present = (keys: Set<string>, name: string): boolean => {
      const group = formGroups().find((forms) => forms.some((form) => form.includes(name)));
      return group ? group.some((f) => f.every((n) => keys.has(n))) : keys.has(name);
    };
    const serviceBusHostSetting = (name: string) =>
      targets.serviceBus.connections.some((c) =>
        SERVICE_BUS_HOST_SUFFIXES.some((suffix) => name === `${c.setting}${suffix}`),
      );

    /** The role definition id of each rotation role: built-in, or the custom role the deployment defines. */
    /** The custom role of the checks' subscription-scope reads (main.bicep `inspectionRole`). */
    function inspectionRoleOf(deployment: Deployment) {
      return only(
        deployment
          .of('Microsoft.Authorization/roleDefinitions')
          .filter((d) => String(d.properties?.roleName).startsWith('stampkeeper inspection reader ')),
        'one custom role for the checks (stampkeeper inspection reader)',
      );
    }

    function rotationRoleIds(deployment: Deployment): Map<RotationRoleName, string> {
      const ids = new Map<RotationRoleName, string>();
      for (const name of Object.keys(ROTATION_ROLE_DEFINITIONS) as RotationRoleName[]) {
        const builtIn = ROTATION_ROLE_DEFINITIONS[name].builtInRoleId;
        if (builtIn) {
          ids.set(name, builtIn);
          continue;
        }
        const defined = deployment
          .of('Microsoft.Authorization/roleDefinitions')
          .filter((d) => String(d.properties?.roleName).includes(` ${name} `));
        if (defined.length === 1) ids.set(name, text(defined[0]!.name));
      }
      return ids;
    }

    /** The custom role the deployment defines for each playbook role (remediationRoles.bicep). */
    function remediationRoleIds(deployment: Deployment): Map<RemediationRoleName, string> {
      const ids = new Map<RemediationRoleName, string>();
      for (const name of Object.keys(REMEDIATION_ROLE_DEFINITIONS) as RemediationRoleName[]) {
        const defined = deployment
          .of('Microsoft.Authorization/roleDefinitions')
          .filter((d) => String(d.properties?.roleName).includes(` ${name} `));
        if (defined.length === 1) ids.set(name, text(defined[0]!.name));
      }
      return ids;
    }

    /**
     * Every scaling playbook of \`policy\` has its role on exactly its target, with exactly the
     * actions its adapter calls (the adapters' TSDoc names them), and nothing more is granted.
     */
    function expectPlaybookGrants(policy: Policy, deployment: Deployment): void {
      // Prepare: what the playbooks change, read from the policy itself (the adapters' TSDoc names the actions).
      const throughput = 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases';
      const needed: string[] = [];
      for (const p of policy.playbooks) {
        if (p.action === 'notify-only') continue;
        const t = p.target;
        if (t.kind === 'cosmosThroughput') {
          const db = `${t.accountId}/sqlDatabases/${t.database}`;
          const scope = t.container ? `${db}/containers/${t.container}` : db;
          const settings = t.container
            ? `${throughput}/containers/throughputSettings`
            : `${throughput}/throughputSettings`;
          needed.push(`${scope} ${settings}/read,${settings}/write`);
          if (p.migrateToAutoscale) needed.push(`${scope} ${settings}/migrateToAutoscale/action`);
          needed.push(
            `${t.accountId.split('/resourceGroups/')[0]} Microsoft.DocumentDB/locations/operationsStatus/read`,
          );
        } else if (t.kind === 'serviceBusNamespace')
          needed.push(
            `${t.namespaceId} Microsoft.ServiceBus/namespaces/read,Microsoft.ServiceBus/namespaces/write`,
          );
        else if (t.kind === 'aksDeployment')
          // kubectl runs inside the cluster through the run command; its result is read back.
          needed.push(
            `${t.clusterId} Microsoft.ContainerService/managedClusters/commandResults/read,Microsoft.ContainerService/managedClusters/runCommand/action`,
          );
        else {
          needed.push(
            `${t.containerAppId} Microsoft.App/containerApps/read,Microsoft.App/containerApps/write`,
          );
          // Its update is a long-running operation Container Apps keeps at the subscription.
          needed.push(
            `${t.containerAppId.split('/resourceGroups/')[0]} Microsoft.App/locations/containerappOperationResults/read,Microsoft.App/locations/containerappOperationStatuses/read`,
          );
        }
      }
      const ids = new Set(remediationRoleIds(deployment).values());
      const definitions = new Map(
        deployment
          .of('Microsoft.Authorization/roleDefinitions')
          .filter((d) => ids.has(text(d.name)))
          .map((d) => [
            text(d.name),
            d.properties as {
              type: string;
              permissions: Array<{ actions: string[]; dataActions: string[] }>;
              assignableScopes: string[];
            },
          ]),
      );

      // Act: every assignment of a playbook role, with the actions its role definition grants.
      const granted = assignments(deployment)
        .map((a) => a.split(' '))
        .filter(([, role]) => ids.has(role!))
        .map(([who, role, scope]) => ({ who, scope: scope!, definition: definitions.get(role!)! }));

      // Assess
      expect(granted.map((g) => g.who).every((w) => w === 'app')).toBe(true);
      expect(
        granted
          .map(
            (g) =>
              `${g.scope} ${g.definition.permissions
                .flatMap((p) => p.actions)
                .sort()
                .join(',')}`,
          )
          .sort(),
      ).toEqual([...new Set(needed)].sort());
      for (const g of granted) {
        // Custom, no data actions, assignable only in the target's resource group (or its subscription).
        expect(g.definition.type).toBe('CustomRole');
        expect(g.definition.permissions.flatMap((p) => p.dataActions)).toEqual([]);
        expect(g.definition.assignableScopes).toContain(
          g.scope.includes('/resourceGroups/') ? g.scope.split('/providers/')[0] : g.scope,
        );
      }
      // Every playbook role defined is assigned.
      expect(new Set(granted.map((g) => g.definition))).toEqual(new Set(definitions.values()));
      expect(needed.length).toBeGreaterThanOrEqual(3);
    }

    it('grants every action and target kind of the full example policy (AKS run command on the cluster)', async () => {
      // Prepare: a copy of infra/ with the playbook targets the full example derives, in place of the bundled policy's.
      const own = await copyInfra();
      try {
        // Only its playbooks' part: the rest (its vaults) would need parameters the environments lack.
        const full = await generatePolicyTargets({
          rootDir: ROOT,
          policyPath: join(ROOT, 'policy/examples/full.policy.yaml'),
        });
        const path = join(own.dir, 'policy.targets.json');
        const mixed = JSON.parse(await readFile(path, 'utf8'));
        mixed.remediation = JSON.parse(full.text).remediation;
        await writeFile(path, JSON.stringify(mixed));
        const example = await loadPolicy(join(ROOT, 'policy/examples/full.policy.yaml'));

        // Act
        const deployment = await deploymentOf(own.dir, 'env/dev.bicepparam', AUTH_ENV);

        // Assess
        expect(
          example.playbooks.some((p) => p.action !== 'notify-only' && p.target.kind === 'aksDeployment'),
        ).toBe(true);
        expectPlaybookGrants(example, deployment);
      } finally {
        await own.dispose();
      }
    }, 120_000);

    describe.each(ENVIRONMENTS)('%s', (env) => {
      const deployment = () => deployments.get(env)!;

      it('sets every app setting the code reads, and nothing the code does not read', () => {
        // Prepare
        const bicep = new Set(Object.keys(appSettingsOf(deployment())));
        const local = new Set(Object.keys(sample));
        const reads = [...appReads].filter((n) => !HOST_PROVIDED.has(n));

        // Act
        const missingFromBicep = reads.filter((n) => !present(bicep, n));
        const missingFromSample = reads.filter((n) => !present(local, n));
        const unreadInBicep = [...bicep].filter(
          (n) => !appReads.has(n) && !HOST_SETTINGS[n]?.bicep && !serviceBusHostSetting(n),
        );
        const unreadInSample = [...local].filter(
          (n) => !appReads.has(n) && !HOST_SETTINGS[n]?.sample && !localHostReads(n),
        );
        const hostProvidedSet = [...bicep, ...local].filter((n) => HOST_PROVIDED.has(n));

        // Assess
        expect(reads.length, 'the code reads settings').toBeGreaterThan(8);
        expect(missingFromBicep, 'read by the code, missing from the Bicep app settings').toEqual([]);
        expect(missingFromSample, 'read by the code, missing from local.settings.sample.json').toEqual([]);
        expect(unreadInBicep, 'in the Bicep app settings, read by nothing').toEqual([]);
        expect(unreadInSample, 'in local.settings.sample.json, read by nothing').toEqual([]);
        expect(hostProvidedSet, 'set by the host, never configured').toEqual([]);
      });

      it('sets values the app accepts', () => {
        // Prepare: deployment-time values replaced by values of their shape.
        const settings = appSettingsOf(deployment());
        const placeholders: Record<string, string> = {
          AzureWebJobsStorage__accountName: 'stplaceholder01',
          AZURE_CLIENT_ID: '00000000-0000-4000-8000-000000000001',
          STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT: 'https://topic.westeurope-1.eventgrid.azure.net/api/events',
          ...Object.fromEntries(
            targets.serviceBus.connections.map((c) => [
              `${c.setting}__fullyQualifiedNamespace`,
              'sb-placeholder.servicebus.windows.net',
            ]),
          ),
        };
        const envFor: Record<string, string> = {};
        const keyVaultReferences: Record<string, string> = {};
        for (const [name, value] of Object.entries(settings)) {
          if (typeof value === 'string' && value.startsWith('@Microsoft.KeyVault(')) {
            keyVaultReferences[name] = value;
            envFor[name] = 'https://hooks.example.com/resolved-by-the-platform';
          } else if (typeof value === 'string') envFor[name] = value;
          else if (name in placeholders) envFor[name] = placeholders[name]!;
        }

        // Act
        const validated = validateSettings(envFor);

        // Assess
        expect(validated.ok ? [] : validated.problems).toEqual([]);
        if (!validated.ok) return;
        expect(validated.settings.environment).toBe(env);
        expect(checkPolicyAgainstSettings(policy, validated.settings)).toEqual([]);
        expect(Object.keys(keyVaultReferences).sort()).toEqual(targets.notifications.urlSettings);
        const sources = deployment().parameters.channelSettingSources as Record<
          string,
          { vaultName: string; secretName: string }
        >;
        for (const [name, reference] of Object.entries(keyVaultReferences)) {
          expect(reference).toBe(
            `@Microsoft.KeyVault(VaultName=${sources[name]!.vaultName};SecretName=${sources[name]!.secretName})`,
          );
        }
      });

      it('runs the app on Flex Consumption, Node 22, with its user-assigned identity and no keys', async () => {
        // Prepare
        const azureYaml = parseYaml(await readFile(join(ROOT, 'azure.yaml'), 'utf8'));
        const [serviceName, service] = Object.entries(
          azureYaml.services as Record<string, { dist: string; remoteBuild: boolean }>,
        )[0]!;

        // Act
        const plan = only(deployment().of('Microsoft.Web/serverfarms'), 'one plan');
        const site = only(deployment().of('Microsoft.Web/sites'), 'one function app');
        const config = site.properties?.functionAppConfig as Record<string, Record<string, unknown>>;
        const storage = deployment().of('Microsoft.Storage/storageAccounts');
        const settings = appSettingsOf(deployment());
        const credentials = deployment().of('Microsoft.Web/sites/basicPublishingCredentialsPolicies');

        // Assess
        expect(plan.sku).toEqual({ name: 'FC1', tier: 'FlexConsumption' });
        expect(site.kind).toBe('functionapp,linux');
        expect(config.runtime).toEqual({ name: 'node', version: '22' });
        expect(site.identity?.type).toBe('UserAssigned');
        const identities = Object.keys(site.identity?.userAssignedIdentities as object);
        expect(identities).toHaveLength(1);
        expect(identities[0]).toMatch(/outputs\.appIdentityId\.value/);
        expect(text(site.properties?.keyVaultReferenceIdentity)).toMatch(/outputs\.appIdentityId\.value/);
        const packageStorage = (config.deployment as { storage: Record<string, Record<string, unknown>> })
          .storage;
        expect(packageStorage.type).toBe('blobContainer');
        expect(packageStorage.authentication!.type).toBe('UserAssignedIdentity');
        expect(text(packageStorage.authentication!.userAssignedIdentityResourceId)).toMatch(/appIdentityId/);
        expect(text(packageStorage.value)).toMatch(/outputs\.deploymentContainerName\.value/);
        expect(
          deployment()
            .of('Microsoft.Storage/storageAccounts/blobServices/containers')
            .map((c) => c.name.split('/').pop())
            .sort(),
        ).toEqual(['app-package', 'eventgrid-deadletter']);
        expect(storage.map((s) => s.properties?.allowSharedKeyAccess)).toEqual([false]);
        expect(settings.AzureWebJobsStorage, 'no storage connection string in Azure').toBeUndefined();
        expect(settings.AzureWebJobsStorage__credential).toBe('managedidentity');
        expect(text(settings.AzureWebJobsStorage__clientId)).toMatch(/outputs\.appClientId\.value/);
        expect(text(settings.AZURE_CLIENT_ID)).toMatch(/outputs\.appClientId\.value/);
        expect(
          only(deployment().of('Microsoft.Insights/components'), 'one App Insights').properties,
        ).toMatchObject({
          DisableLocalAuth: true,
          WorkspaceResourceId: resourceId(deployment(), 'Microsoft.OperationalInsights/workspaces'),
        });
        for (const topic of deployment().of('Microsoft.EventGrid/topics')) {
          expect(topic.properties?.disableLocalAuth).toBe(true);
        }
        expect(credentials.map((c) => [c.name.split('/').pop(), c.properties?.allow]).sort()).toEqual([
          ['ftp', false],
          ['scm', false],
        ]);
        // azd deploys the service tagged with its name, from the folder `npm run build` fills.
        expect(site.tags?.['azd-service-name']).toBe(serviceName);
        expect(service.dist).toBe('dist');
        // dist/ is bundled (no dependencies): no remote build (azd's default for TypeScript is one).
        expect(service.remoteBuild).toBe(false);
        expect(azureYaml.infra).toEqual({ provider: 'bicep', path: 'infra', module: 'main' });
      });

      it('gives every trigger connection the role it needs', () => {
        // Prepare
        const settings = appSettingsOf(deployment());
        const granted = new Set(assignments(deployment()));
        const storageId = resourceId(deployment(), 'Microsoft.Storage/storageAccounts');
        const subscriptions = deployment().of('Microsoft.EventGrid/systemTopics/eventSubscriptions');

        // Act
        const problems: string[] = [];
        const hostStorage = (connection = 'AzureWebJobsStorage', role: string) => {
          if (!text(settings[`${connection}__accountName`]).includes('outputs.accountName.value')) {
            problems.push(`${connection}: not the app's storage account by identity`);
          }
          if (!granted.has(`app ${role} ${storageId}`))
            problems.push(`${connection}: app lacks role ${role}`);
        };
        // Host storage with an identity (Functions docs): blobs for the host, tables for the app's state.
        hostStorage('AzureWebJobsStorage', ROLE.storageBlobDataOwner);
        hostStorage('AzureWebJobsStorage', ROLE.storageTableDataContributor);
        for (const t of triggers) {
          switch (t.type) {
            case 'queueTrigger':
              hostStorage(t.connection ?? 'AzureWebJobsStorage', ROLE.storageQueueDataContributor);
              break;
            case 'timerTrigger':
              hostStorage('AzureWebJobsStorage', ROLE.storageBlobDataOwner);
              break;
            case 'httpTrigger':
              break; // keys or (issue 7 section 4) built-in authentication, not roles
            case 'serviceBusTrigger': {
              // Identity-based: the namespace of the policy's entity, the app identity, and Data
              // Receiver on the very entity the trigger reads (its dead-letter sub-queue).
              const connection = t.connection ?? '';
              const index = targets.serviceBus.connections.find((c) => c.setting === connection)?.namespace;
              const ns = index === undefined ? undefined : targets.serviceBus.namespaces[index];
              if (!ns) {
                problems.push(`${t.name}: connection ${connection} is not a namespace of the policy`);
                break;
              }
              if (
                !text(settings[`${connection}__fullyQualifiedNamespace`]).includes('fullyQualifiedNamespace')
              )
                problems.push(
                  `${t.name}: ${connection}__fullyQualifiedNamespace is not the namespace's host name`,
                );
              if (settings[`${connection}__credential`] !== 'managedidentity')
                problems.push(`${t.name}: ${connection}__credential is not managedidentity`);
              if (!text(settings[`${connection}__clientId`]).includes('outputs.appClientId.value'))
                problems.push(`${t.name}: ${connection}__clientId is not the app identity`);
              const entity = t.queueName
                ? `queues/${t.queueName.split('/')[0]}`
                : `topics/${t.topicName}/subscriptions/${(t.subscriptionName ?? '').split('/')[0]}`;
              if (!granted.has(`app ${ROLE.serviceBusDataReceiver} ${ns.id}/${entity}`))
                problems.push(`${t.name}: app lacks Azure Service Bus Data Receiver on ${entity}`);
              break;
            }
            case 'eventGridTrigger':
              if (
                targets.vaults.length > 0 &&
                !subscriptions.some((s) =>
                  text(
                    (s.properties!.destination as { properties: { resourceId: unknown } }).properties
                      .resourceId,
                  ).endsWith(`/functions/${t.name}`),
                )
              ) {
                problems.push(`${t.name}: no Event Grid subscription delivers to it`);
              }
              break;
            default:
              problems.push(
                `${t.name}: no rule for a ${t.type}: give it its wiring in infra/ and a rule in this test`,
              );
          }
        }

        // Assess
        expect(triggers.length).toBeGreaterThan(5);
        expect(problems).toEqual([]);
      });

      it('gives every policy target the role it needs, and the app nothing more', () => {
        // Prepare
        const placements = deployment().parameters.vaultPlacements as Record<
          string,
          { resourceGroup: string; subscriptionId?: string }
        >;
        const sources = deployment().parameters.channelSettingSources as Record<
          string,
          { vaultName: string; secretName: string; resourceGroup: string; subscriptionId?: string }
        >;
        const storageId = resourceId(deployment(), 'Microsoft.Storage/storageAccounts');
        const inspectionRole = inspectionRoleOf(deployment());
        const expected = [
          `app ${ROLE.storageBlobDataOwner} ${storageId}`,
          `app ${ROLE.storageQueueDataContributor} ${storageId}`,
          `app ${ROLE.storageTableDataContributor} ${storageId}`,
          `app ${ROLE.monitoringMetricsPublisher} ${resourceId(deployment(), 'Microsoft.Insights/components')}`,
          `events ${ROLE.storageBlobDataContributor} ${resourceId(deployment(), 'Microsoft.Storage/storageAccounts/blobServices/containers', `${storageId.split('/').pop()}/default/eventgrid-deadletter`)}`,
          ...targets.vaults.map((v) => {
            const p = placements[v.name]!;
            return `app ${ROLE[v.role]} /subscriptions/${p.subscriptionId ?? SCOPE.subscriptionId}/resourceGroups/${p.resourceGroup}/providers/Microsoft.KeyVault/vaults/${v.name}`;
          }),
          ...(targets.notifications.eventGridTopic
            ? [`app ${ROLE.eventGridDataSender} ${resourceId(deployment(), 'Microsoft.EventGrid/topics')}`]
            : []),
          // What the checks and the gates read: read-only roles on the resources the policy names.
          ...targets.inspection.resources.map((r) => `app ${ROLE[r.role]} ${r.resourceId}`),
          ...targets.inspection.subscriptions.map(
            (sub) => `app ${inspectionRole.name.split('/').pop()} /subscriptions/${sub}`,
          ),
          ...targets.notifications.urlSettings.map((name) => {
            const s = sources[name]!;
            return `app ${ROLE.keyVaultSecretsUser} /subscriptions/${s.subscriptionId ?? SCOPE.subscriptionId}/resourceGroups/${s.resourceGroup}/providers/Microsoft.KeyVault/vaults/${s.vaultName}/secrets/${s.secretName}`;
          }),
          // Rotation: each role on exactly its resource (the next test checks which and why).
          ...targets.rotation.grants.map(
            (g) => `app ${rotationRoleIds(deployment()).get(g.role)} ${g.resourceId}`,
          ),
          // Remediation: each playbook's role on exactly its target (a later test checks which and why).
          ...targets.remediation.grants.map(
            (g) => `app ${remediationRoleIds(deployment()).get(g.role)} ${g.resourceId}`,
          ),
          // Dead letters: exactly the entities the policy names (scripts/infra-params.ts says why each).
          ...targets.serviceBus.namespaces.flatMap((ns) => [
            ...ns.queueRoles.map((q) => `app ${ROLE[q.role]} ${ns.id}/queues/${q.queue}`),
            ...ns.topicRoles.map((t) => `app ${ROLE[t.role]} ${ns.id}/topics/${t.topic}`),
            ...ns.subscriptionRoles.map(
              (s) => `app ${ROLE[s.role]} ${ns.id}/topics/${s.topic}/subscriptions/${s.subscription}`,
            ),
            ...(ns.metricsReader ? [`app ${ROLE.monitoringReader} ${ns.id}`] : []),
          ]),
        ].sort();

        // Act
        const actual = assignments(deployment()).sort();

        // Assess
        expect(actual).toEqual(expected);
        // The bundled policy rotates its secrets: publishing new versions needs Key Vault Secrets
        // Officer on that vault (a manual rotation would need only Key Vault Reader: params.test.ts).
        expect(targets.vaults.map((v) => v.role)).toEqual(targets.vaults.map(() => 'keyVaultSecretsOfficer'));
      });

      it('defines the custom inspection role with exactly the subscription-scope reads the checks make, assignable only where the policy reads', () => {
        // Prepare
        const role = inspectionRoleOf(deployment());
        const properties = role.properties as {
          type: string;
          permissions: Array<{ actions: string[]; notActions: string[]; dataActions?: string[] }>;
          assignableScopes: string[];
        };

        // Assess
        expect(properties.type).toBe('CustomRole');
        expect(properties.permissions).toEqual([
          {
            actions: [
              'Microsoft.ContainerService/locations/kubernetesVersions/read',
              'Microsoft.DocumentDB/locations/restorableDatabaseAccounts/read',
              'Microsoft.Quota/quotas/read',
              'Microsoft.Quota/usages/read',
            ],
            notActions: [],
          },
        ]);
        expect(properties.assignableScopes).toEqual(
          targets.inspection.subscriptions.map((sub) => `/subscriptions/${sub}`),
        );
        expect(properties.permissions[0]!.actions.every((a) => a.endsWith('/read'))).toBe(true);
      });

      it('gives every rotation target and consumer its role on exactly that resource, with exactly the actions its adapter calls', () => {
        // Prepare: what the policy rotates and rolls, read from the policy itself.
        const keyRole = (r: Extract<Policy['secrets'][number]['rotation'], { resourceId: string }>) => {
          if (r.provider === 'cosmosDbKeys')
            return r.keyPair === 'readOnly' ? 'cosmosDbReadOnlyKeys' : 'cosmosDbKeys';
          if (r.provider === 'storageAccountKeys') return 'storageAccountKeys';
          return /\/queues\//i.test(r.resourceId)
            ? 'serviceBusQueueRuleKeys'
            : /\/topics\//i.test(r.resourceId)
              ? 'serviceBusTopicRuleKeys'
              : 'serviceBusNamespaceRuleKeys';
        };
        const needed: Array<[RotationRoleName, string]> = [];
        for (const secret of policy.secrets) {
          const r = secret.rotation;
          if (r.provider === 'manual') continue;
          needed.push([keyRole(r), r.resourceId]);
          if (r.provider === 'cosmosDbKeys')
            needed.push(['cosmosDbOperationStatus', r.resourceId.split('/resourceGroups/')[0]!]);
          for (const c of r.consumers) {
            if (c.type === 'aksDeployment') needed.push(['aksRunCommand', c.clusterId]);
            if (c.type === 'containerApp') needed.push(['containerAppRestart', c.resourceId]);
            if (c.type === 'appService') needed.push(['webAppRestart', c.resourceId]);
          }
        }
        const expected = [
          ...new Set(
            needed.map(
              ([role, scope]) => `${scope} ${[...ROTATION_ROLE_DEFINITIONS[role].actions].sort().join(',')}`,
            ),
          ),
        ].sort();
        // The built-in role's actions, as Azure defines it ("Storage Account Key Operator Service Role").
        const builtInActions: Record<string, string[]> = {
          [STORAGE_ACCOUNT_KEY_OPERATOR]: [
            'Microsoft.Storage/storageAccounts/listkeys/action',
            'Microsoft.Storage/storageAccounts/regeneratekey/action',
          ],
        };

        // Act: every assignment of a rotation role, with the actions its role definition grants.
        // The rotation's custom roles (the checks' inspection role has its own test).
        const inspection = text(inspectionRoleOf(deployment()).name);
        const playbookRoles = new Set(remediationRoleIds(deployment()).values());
        const definitions = new Map(
          deployment()
            .of('Microsoft.Authorization/roleDefinitions')
            .filter((d) => text(d.name) !== inspection && !playbookRoles.has(text(d.name)))
            .map((d) => [
              text(d.name),
              d.properties as {
                permissions: Array<{ actions: string[]; dataActions: string[] }>;
                assignableScopes: string[];
              },
            ]),
        );
        const rotationIds = new Set(rotationRoleIds(deployment()).values());
        const granted = assignments(deployment())
          .map((a) => a.split(' '))
          .filter(([, role]) => rotationIds.has(role!))
          .map(([who, role, scope]) => {
            const custom = definitions.get(role!);
            const actions = custom ? custom.permissions.flatMap((p) => p.actions) : builtInActions[role!]!;
            return { who, scope: scope!, actions, custom };
          });

        // Assess
        expect(granted.map((g) => g.who).every((w) => w === 'app')).toBe(true);
        expect(granted.map((g) => `${g.scope} ${[...g.actions].sort().join(',')}`).sort()).toEqual(expected);
        for (const g of granted.filter((x) => x.custom)) {
          // No data actions, and assignable only where the policy's resources are.
          expect(g.custom!.permissions.flatMap((p) => p.dataActions)).toEqual([]);
          const rg = g.scope.split('/providers/')[0]!;
          expect(g.custom!.assignableScopes).toContain(g.scope.includes('/resourceGroups/') ? rg : g.scope);
        }
        // Every custom role is used, with only the scopes of its grants.
        expect(
          [...definitions.keys()].every((id) =>
            granted.some((g) => g.custom && definitions.get(id) === g.custom),
          ),
        ).toBe(true);
        expect(expected.length).toBeGreaterThanOrEqual(6);
      });

      it('gives every playbook target its role on exactly that resource, with exactly the actions its adapter calls', () => {
        expectPlaybookGrants(policy, deployment());
      });

      it("makes each scaling playbook a metric alert rule on its signal, which the intake's findPlaybook matches to it, posting to the action group", () => {
        // Prepare
        const scaling = policy.playbooks.filter((p) => p.action !== 'notify-only');
        const alerts = deployment()
          .of('Microsoft.Insights/metricAlerts')
          .filter((a) => String(a.properties?.description).startsWith('stampkeeper playbook '));

        // Act: what Azure Monitor would send for each rule (common alert schema: the rule's name, its
        // scope, its condition's metric, its action's webhook properties as data.customProperties).
        const matched = alerts.map((a) => {
          const p = a.properties as {
            scopes: string[];
            criteria: { allOf: Array<Record<string, unknown>> };
            actions: Array<{ actionGroupId: unknown; webHookProperties: Record<string, string> }>;
          };
          const playbook = findPlaybook(policy.playbooks, {
            alertRule: a.name,
            targetResourceIds: p.scopes,
            conditions: p.criteria.allOf.map((c) => ({ metricName: String(c.metricName) })),
            customProperties: p.actions[0]!.webHookProperties ?? {},
          });
          return { alert: a, p, playbook };
        });

        // Assess
        expect(matched.map((m) => m.playbook?.name).sort()).toEqual(scaling.map((p) => p.name).sort());
        for (const { alert, p, playbook } of matched) {
          if (!playbook || playbook.action === 'notify-only')
            throw new Error(`${alert.name}: no scaling playbook`);
          const { signal } = playbook;
          const rule = signal.alert!;
          // In the signal resource's own resource group, on that resource only.
          expect(text(alert.id).toLowerCase()).toBe(
            `${signal.resourceId.split('/providers/')[0]}/providers/Microsoft.Insights/metricAlerts/${alert.name}`.toLowerCase(),
          );
          expect(p.scopes).toEqual([signal.resourceId]);
          expect(p.criteria.allOf).toEqual([
            {
              criterionType: 'StaticThresholdCriterion',
              name: 'signal',
              metricNamespace: signal.resourceId.split('/providers/')[1]!.split('/').slice(0, 2).join('/'),
              metricName: signal.metric,
              dimensions: Object.entries(signal.dimensions)
                .sort(([a], [b]) => a.localeCompare(b))
                .map(([name, value]) => ({ name, operator: 'Include', values: [value] })),
              timeAggregation: signal.aggregation,
              operator: 'GreaterThan',
              threshold: rule.threshold,
            },
          ]);
          expect(alert.properties).toMatchObject({
            severity: rule.severity,
            enabled: true,
            windowSize: `PT${rule.windowMinutes}M`,
            evaluationFrequency: `PT${rule.frequencyMinutes}M`,
          });
          // The action group of modules/alerts.bicep: its id, through the module's output.
          expect(p.actions).toHaveLength(1);
          expect(text(p.actions[0]!.actionGroupId)).toMatch(/outputs\.actionGroupId\.value/);
        }
        expect(alerts.length).toBeGreaterThanOrEqual(2);
      });

      it("delivers each managed vault's secret events to keyVaultEvents, with retries and dead-lettering", () => {
        // Prepare
        const placements = deployment().parameters.vaultPlacements as Record<
          string,
          { resourceGroup: string }
        >;
        const eventGridFunctions = triggers.filter((t) => t.type === 'eventGridTrigger').map((t) => t.name);

        // Act
        const topics = deployment().of('Microsoft.EventGrid/systemTopics');
        const subscriptions = deployment().of('Microsoft.EventGrid/systemTopics/eventSubscriptions');

        // Assess
        expect(eventGridFunctions).toEqual(['keyVaultEvents']);
        expect(topics).toHaveLength(targets.vaults.length);
        expect(subscriptions).toHaveLength(targets.vaults.length);
        for (const vault of targets.vaults) {
          const vaultId = `/subscriptions/${SCOPE.subscriptionId}/resourceGroups/${placements[vault.name]!.resourceGroup}/providers/Microsoft.KeyVault/vaults/${vault.name}`;
          const topic = only(
            topics.filter((t) => t.properties?.source === vaultId),
            `system topic of ${vault.name}`,
          );
          expect(topic.properties?.topicType).toBe('Microsoft.KeyVault.vaults');
          expect(Object.keys(topic.identity?.userAssignedIdentities as object)[0]).toMatch(
            /eventsIdentityId/,
          );
          const sub = only(
            subscriptions.filter((s) => s.name.startsWith(`${topic.name}/`)),
            `subscription of ${vault.name}`,
          );
          const p = sub.properties as Record<string, Record<string, unknown>>;
          const destination = p.destination as { endpointType: string; properties: { resourceId: unknown } };
          expect(destination.endpointType).toBe('AzureFunction');
          expect(text(destination.properties.resourceId)).toMatch(
            /outputs\.siteId\.value\}\/functions\/keyVaultEvents$/,
          );
          expect([...(p.filter!.includedEventTypes as string[])].sort()).toEqual(
            [...SECRET_EVENT_TYPES].sort(),
          );
          expect(p.retryPolicy!.maxDeliveryAttempts).toBeGreaterThan(1);
          const deadLetter = p.deadLetterWithResourceIdentity as {
            identity: { type: string; userAssignedIdentity: unknown };
            deadLetterDestination: { endpointType: string; properties: Record<string, unknown> };
          };
          expect(deadLetter.identity.type).toBe('UserAssigned');
          expect(text(deadLetter.identity.userAssignedIdentity)).toMatch(/outputs\.eventsIdentityId\.value/);
          expect(deadLetter.deadLetterDestination.endpointType).toBe('StorageBlob');
          expect(text(deadLetter.deadLetterDestination.properties.blobContainerName)).toMatch(
            /outputs\.deadLetterContainerName\.value/,
          );
        }
      });

      it("puts built-in authentication in front of the app, letting through the platform's own deliveries only", () => {
        // Prepare
        const httpFunctions = triggers.filter((t) => t.type === 'httpTrigger');
        const pathOf = (t: Trigger) => `/${routePrefix}/${t.route ?? t.name}`.toLowerCase();
        const expectedExcluded = [
          ...httpFunctions.filter((t) => t.name in PUBLIC_HTTP_FUNCTIONS).map(pathOf),
          ...(triggers.some((t) => t.type === 'eventGridTrigger') ? [EVENT_GRID_WEBHOOK] : []),
        ].sort();

        // Act
        const auth = only(
          deployment()
            .of('Microsoft.Web/sites/config')
            .filter((r) => r.name.endsWith('/authsettingsV2')),
          'one authsettingsV2 resource',
        ).properties as {
          platform: { enabled: boolean };
          globalValidation: {
            requireAuthentication: boolean;
            unauthenticatedClientAction: string;
            excludedPaths: string[];
          };
          identityProviders: {
            azureActiveDirectory: {
              enabled: boolean;
              registration: { clientId: string; openIdIssuer: string; clientSecretSettingName?: string };
              validation: { allowedAudiences: string[] };
            };
          };
        };
        const entra = auth.identityProviders.azureActiveDirectory;
        const group = only(deployment().of('Microsoft.Insights/actionGroups'), 'one action group');
        const receiver = (group.properties!.webhookReceivers as Array<Record<string, unknown>>)[0]!;
        // `https://${<the app's host name, known at deployment>}/api/alerts?code=${listKeys(...)}`
        const alertsPath = /^https:\/\/\$\{.*?defaultHostName\.value\}(\/[^?]*)\?code=/.exec(
          text(receiver.serviceUri),
        )?.[1];

        // Assess
        expect(Object.keys(PUBLIC_HTTP_FUNCTIONS).every((n) => httpFunctions.some((t) => t.name === n))).toBe(
          true,
        );
        expect(auth.platform.enabled).toBe(true);
        expect(auth.globalValidation.requireAuthentication).toBe(true);
        expect(auth.globalValidation.unauthenticatedClientAction).toBe('Return401');
        expect([...auth.globalValidation.excludedPaths].map((p) => p.toLowerCase()).sort()).toEqual(
          expectedExcluded,
        );
        // The local host emulates the same exclusions.
        expect([...BUILT_IN_AUTH_EXCLUDED_PATHS].sort()).toEqual(
          [...auth.globalValidation.excludedPaths].sort(),
        );
        for (const fn of httpFunctions.filter((t) => !(t.name in PUBLIC_HTTP_FUNCTIONS))) {
          expect(expectedExcluded, `${fn.name} is behind built-in authentication`).not.toContain(pathOf(fn));
        }
        expect(entra.enabled).toBe(true);
        expect(entra.registration.clientId).toBe(AUTH.clientId);
        // The cloud's own login endpoint (never a hard-coded URL), this tenant, v2.0 tokens.
        expect(text(entra.registration.openIdIssuer)).toBe(
          `\${environment().authentication.loginEndpoint}${SCOPE.tenantId}/v2.0`,
        );
        expect(
          entra.registration.clientSecretSettingName,
          'an API validates tokens: no secret',
        ).toBeUndefined();
        // The action group calls the alert intake as a secure webhook with a token for this app
        // registration, on a path built-in authentication does not exclude.
        expect(receiver).toMatchObject({
          useAadAuth: true,
          objectId: AUTH.objectId,
          identifierUri: `api://${AUTH.clientId}`,
          tenantId: SCOPE.tenantId,
        });
        expect(entra.validation.allowedAudiences).toContain(receiver.identifierUri);
        expect(alertsPath).toBe(
          pathOf(
            only(
              triggers.filter((t) => t.name === 'alerts'),
              'alerts',
            ),
          ),
        );
        expect(expectedExcluded).not.toContain(alertsPath);
      });

      it("posts alerts in the common schema to the app's alert intake, and alerts on the app's failures and poison queue", () => {
        // Prepare
        const alertsFunction = only(
          triggers.filter((t) => t.name === 'alerts'),
          'the alerts function',
        );
        const runWorker = only(
          triggers.filter((t) => t.type === 'queueTrigger'),
          'the run worker',
        );
        const workQueue = appSettingsOf(deployment()).STAMPKEEPER_WORK_QUEUE;

        // Act
        const group = only(deployment().of('Microsoft.Insights/actionGroups'), 'one action group');
        const webhooks = group.properties?.webhookReceivers as Array<Record<string, unknown>>;
        const metricAlerts = deployment().of('Microsoft.Insights/metricAlerts');
        const logAlerts = deployment().of('Microsoft.Insights/scheduledQueryRules');

        // Assess
        expect(webhooks).toHaveLength(1);
        expect(webhooks[0]!.useCommonAlertSchema).toBe(true);
        expect(alertsFunction.authLevel).toBe('function');
        const serviceUri = text(webhooks[0]!.serviceUri);
        expect(serviceUri.startsWith('https://${')).toBe(true);
        // The function key stays in the URI; the Entra token of the secure webhook comes on top.
        expect(serviceUri).toContain(
          `outputs.defaultHostName.value}/${routePrefix}/${alertsFunction.route}?code=\${listKeys(`,
        );
        const failures = only(
          metricAlerts.filter((a) => JSON.stringify(a.properties).includes('requests/failed')),
          'app failures alert',
        );
        expect(text((failures.properties!.scopes as unknown[])[0])).toMatch(/outputs\.appInsightsId\.value/);
        // The run worker's queue is the work queue the app is configured with; its poison queue is alerted on.
        expect(runWorker.queueName).toBe('stampkeeper-work');
        expect(workQueue).toBe('stampkeeper-work');
        const poison = only(logAlerts, 'poison queue alert');
        const query = (poison.properties!.criteria as { allOf: Array<{ query: string }> }).allOf[0]!.query;
        expect(query).toContain(`'${workQueue}-poison'`);
        // The playbooks' rules post to the same group, through the alerts module's output (next test).
        const playbookRules = new Set(targets.remediation.alertRules.map((r) => r.name));
        for (const alert of [...metricAlerts, ...logAlerts].filter((a) => !playbookRules.has(a.name))) {
          const actions = JSON.stringify(alert.properties?.actions);
          expect(actions, alert.name).toContain(text(group.id));
        }
      });
    });

    it('leaves out what points at deployed functions on the first provision (wireFunctions false)', () => {
      // Prepare
      const wired = deployments.get('dev')!;

      // Act
      const types = (d: Deployment) => new Set(d.resources.map((r) => r.type));

      // Assess
      for (const type of [
        'Microsoft.EventGrid/systemTopics/eventSubscriptions',
        'Microsoft.Insights/actionGroups',
        'Microsoft.Insights/metricAlerts',
        'Microsoft.Insights/scheduledQueryRules',
      ]) {
        expect(types(wired).has(type), type).toBe(true);
        expect(types(unwired).has(type), type).toBe(false);
      }
      expect(unwired.of('Microsoft.EventGrid/systemTopics')).toHaveLength(targets.vaults.length);
      expect(assignments(unwired).sort()).toEqual(assignments(wired).sort());
    });

    it("alerts on the workload's Cosmos DB accounts and Service Bus namespaces given as parameters", async () => {
      // Prepare
      const cosmos = `/subscriptions/${SCOPE.subscriptionId}/resourceGroups/rg-data/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-orders`;
      const bus = `/subscriptions/${SCOPE.subscriptionId}/resourceGroups/rg-msg/providers/Microsoft.ServiceBus/namespaces/sb-orders`;
      await writeFile(
        join(infra.dir, 'env', 'alerts-check.bicepparam'),
        `using '../main.bicep'\nextends 'dev.bicepparam'\nparam cosmosDbAccountIds = ['${cosmos}']\nparam serviceBusNamespaceIds = ['${bus}']\n`,
      );

      // Act
      const deployment = await deploymentOf(infra.dir, 'env/alerts-check.bicepparam', AUTH_ENV);
      const criteria = deployment
        .of('Microsoft.Insights/metricAlerts')
        .map((a) => ({
          scope: (a.properties!.scopes as string[])[0],
          criterion: (a.properties!.criteria as { allOf: Array<Record<string, unknown>> }).allOf[0]!,
        }))
        .filter((c) => c.scope === cosmos || c.scope === bus)
        .map((c) => ({
          scope: c.scope,
          namespace: c.criterion.metricNamespace,
          metric: c.criterion.metricName,
          dimensions: c.criterion.dimensions,
        }));

      // Assess
      expect(criteria).toEqual(
        expect.arrayContaining([
          {
            scope: cosmos,
            namespace: 'Microsoft.DocumentDB/databaseAccounts',
            metric: 'TotalRequests',
            dimensions: [{ name: 'StatusCode', operator: 'Include', values: ['429'] }],
          },
          {
            scope: cosmos,
            namespace: 'Microsoft.DocumentDB/databaseAccounts',
            metric: 'NormalizedRUConsumption',
            dimensions: undefined,
          },
          {
            scope: bus,
            namespace: 'Microsoft.ServiceBus/namespaces',
            metric: 'ActiveMessages',
            dimensions: [{ name: 'EntityName', operator: 'Include', values: ['*'] }],
          },
          {
            scope: bus,
            namespace: 'Microsoft.ServiceBus/namespaces',
            metric: 'DeadletteredMessages',
            dimensions: [{ name: 'EntityName', operator: 'Include', values: ['*'] }],
          },
        ]),
      );
      expect(criteria).toHaveLength(4);
    }, 60_000);

    it('refuses an environment without its Entra app registration', async () => {
      // Act
      const missing = await deploymentOf(infra.dir, 'env/dev.bicepparam', {
        STAMPKEEPER_AUTH_CLIENT_ID: AUTH.clientId,
      }).then(
        () => 'deployed',
        (error: Error) => error.message,
      );
      const malformed = await deploymentOf(infra.dir, 'env/prod.bicepparam', {
        STAMPKEEPER_AUTH_CLIENT_ID: 'stampkeeper-prod',
        STAMPKEEPER_AUTH_OBJECT_ID: AUTH.objectId,
      }).then(
        () => 'deployed',
        (error: Error) => error.message,
      );

      // Assess
      expect(missing).toMatch(/authAppObjectId: not the GUID of the environment's Entra app registration/);
      expect(malformed).toMatch(/authClientId: not the GUID of the environment's Entra app registration/);
    }, 60_000);

    it('declares in infra/entra the app roles the code checks, with stable ids', async () => {
      // Prepare
      const manifest = JSON.parse(await readFile(join(ROOT, 'infra/entra/app-roles.json'), 'utf8')) as Array<{
        id: string;
        value: string;
        allowedMemberTypes: string[];
        isEnabled: boolean;
      }>;

      // Act
      const byValue = new Map(manifest.map((r) => [r.value, r]));

      // Assess
      expect([...byValue.keys()].sort()).toEqual(Object.values(ROLES).sort());
      expect(new Set(manifest.map((r) => r.id)).size).toBe(manifest.length);
      for (const role of manifest) {
        expect(role.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        expect(role.isEnabled).toBe(true);
      }
      for (const value of [ROLES.read, ROLES.execute, ROLES.approve]) {
        expect(byValue.get(value)!.allowedMemberTypes.sort(), value).toEqual(['Application', 'User']);
      }
      // Only Azure Monitor's service principal holds it: an application role, never a user's.
      expect(byValue.get(ROLES.alertDelivery)!.allowedMemberTypes).toEqual(['Application']);
    });

    it('refuses an environment that does not place a policy vault or a channel setting', async () => {
      // Prepare
      await writeFile(
        join(infra.dir, 'env', 'unplaced.bicepparam'),
        "using '../main.bicep'\nextends 'dev.bicepparam'\nparam vaultPlacements = {}\n",
      );
      await writeFile(
        join(infra.dir, 'env', 'unsourced.bicepparam'),
        "using '../main.bicep'\nextends 'dev.bicepparam'\nparam channelSettingSources = {}\n",
      );

      // Act
      const unplaced = await deploymentOf(infra.dir, 'env/unplaced.bicepparam', AUTH_ENV).then(
        () => 'deployed',
        (error: Error) => error.message,
      );
      const unsourced = await deploymentOf(infra.dir, 'env/unsourced.bicepparam', AUTH_ENV).then(
        () => 'deployed',
        (error: Error) => error.message,
      );

      // Assess
      expect(unplaced).toMatch(/vaultPlacements has no entry for the policy vault\(s\) stampkeeper-sandbox/);
      expect(unsourced).toMatch(
        /channelSettingSources has no entry for the policy setting\(s\) LEGACY_STAMP_ROLL_WEBHOOK_URL, ORDERS_WORKER_HEALTH_URL, REPORTS_BATCH_HEALTH_URL, STAMPKEEPER_JOBS_HEALTH_URL, TEAMS_WEBHOOK_URL/,
      );
    }, 60_000);
  },
);
