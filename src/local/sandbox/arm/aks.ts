/**
 * AKS managed clusters (`Microsoft.ContainerService/managedClusters`): the cluster resource and the
 * run-command API (azure-rest-api-specs containerservice `ManagedClusters_RunCommand` /
 * `ManagedClusters_GetCommandResult`, test/fixtures/rest/aks), which runs `kubectl` inside the
 * cluster on the caller's behalf, so private clusters work without network access to the API server.
 *
 * - `POST .../managedClusters/{name}/runCommand` `{ command, context?, clusterToken? }`: 202 with a
 *   `location` naming `.../commandResults/{id}` (lower-case `resourcegroups`, as the published example).
 * - `GET .../commandResults/{id}`: 202 (with `location`) while the command runs, then 200
 *   `{ id, properties: { provisioningState: "Succeeded", exitCode, startedAt, finishedAt, logs } }`.
 *   A command that ran and failed is `Succeeded` with a non-zero `exitCode` (the command ran);
 *   `Failed` with a `reason` is for a command AKS could not run (not emulated).
 *
 * The command is a shell line of `kubectl` invocations joined by `&&` / `;` (the logs: each one's
 * output, joined by newlines); the sandbox emulates against the scenario's deployments (one listed
 * under the cluster's `deployments`, with its replicas and KEDA ScaledObject, or a consumer of kind
 * aksDeployment: one replica, no ScaledObject). The objects and what they print: `kubeObjects.ts`.
 * - `kubectl get <deployment|scaledobject>/<name> -n <ns> -o json` (also `<type> <name>`, `deploy`,
 *   `deployments`, `deployment.apps`, `so`, `scaledobjects`, `scaledobject.keda.sh`, `-ojson`,
 *   `--output=json`): the object as kubectl prints it. Tables and other formats are not emulated
 *   (exit 1); an unknown format is kubectl's `unable to match a printer` error;
 * - `kubectl get hpa -n <ns> -o json`: the namespace's HorizontalPodAutoscalers as a `List`: KEDA's
 *   `keda-hpa-<ScaledObject>` for each ScaledObject (the sandbox's clusters have no other HPA);
 * - `kubectl scale deployment/<name> -n <ns> --replicas=<N>` (or `--replicas N`): `deployment.apps/<name>
 *   scaled`; a missing or negative count is kubectl's `The --replicas=COUNT flag is required, and COUNT
 *   must be greater than or equal to 0`, a count that is not an integer pflag's `invalid argument`
 *   (kubernetes/kubectl `pkg/cmd/scale`);
 * - `kubectl patch scaledobject/<name> -n <ns> --type=merge -p '<json>'` (or `-p=`, `--patch`): sets
 *   `spec.minReplicaCount` / `spec.maxReplicaCount` only (anything else: "not emulated", exit 1);
 *   `scaledobject.keda.sh/<name> patched`, or `patched (no change)`. KEDA's webhook refuses bounds as
 *   `Error from server (Forbidden): admission webhook "vscaledobject.kb.io" denied the request:
 *   MinReplicaCount=<min> must be less than MaxReplicaCount=<max>`; without `--type` the API server
 *   refuses a strategic merge patch of a custom resource (415 UnsupportedMediaType);
 * - an unknown object: `Error from server (NotFound): deployments.apps "<name>" not found` /
 *   `scaledobjects.keda.sh "<name>" not found`; a ScaledObject on a cluster without any (KEDA not
 *   installed): `error: the server doesn't have a resource type "<type>"`;
 * - `kubectl rollout restart deployment/<name> -n <ns>`: starts a roll of the consumer, prints
 *   `deployment.apps/<name> restarted`; an unknown deployment prints `Error from server (NotFound):
 *   deployments.apps "<name>" not found` and exits 1;
 * - `kubectl rollout status deployment/<name> -n <ns> [--timeout=<duration>] [--watch=false]`:
 *   waits on the sandbox clock until the running roll ends (`deployment "<name>" successfully rolled
 *   out`, or `error: deployment "<name>" exceeded its progress deadline` and exit 1 for a failed
 *   roll), or until the timeout (`error: timed out waiting for the condition`, exit 1). Without a
 *   timeout it waits as long as the roll does (kubectl's default timeout is 0: forever), so a hung
 *   roll keeps the command running; callers must pass `--timeout`.
 * Anything else exits non-zero with kubectl's or the shell's error.
 *
 * Versions (azure-rest-api-specs containerservice 2025-10-01 `ManagedClustersGetUpgradeProfile.json`,
 * `KubernetesVersions_List.json`, in test/fixtures/rest/aks):
 * - the cluster's `kubernetesVersion` / `currentKubernetesVersion` and its node pool's
 *   `orchestratorVersion` / `currentOrchestratorVersion` (the scenario's);
 * - `GET .../managedClusters/{name}/upgradeProfiles/default`: `controlPlaneProfile` and one
 *   `agentPoolProfiles` entry, each with the `upgrades` AKS allows from its version: the later patches
 *   of its minor and the patches of the next minor offered in the cluster's location (preview ones
 *   flagged `isPreview`), as the catalog's `patchVersions.upgrades` say;
 * - `GET /subscriptions/{sub}/providers/Microsoft.ContainerService/locations/{loc}/kubernetesVersions`:
 *   `{ values: [{ version, isPreview?, isDefault?, capabilities: { supportPlan }, patchVersions }] }`
 *   from the scenario's `arm.kubernetesVersions` (or the sandbox's illustrative default catalog).
 */
import type { SandboxClock, WorldTicker } from '../clock';
import { azureError, type SandboxReply } from '../http';
import { seededUuid } from '../ids';
import type { ConsumerWorld } from './consumers';
import { type ArmProvider, type ArmProviderPathRequest, type ArmRequest, notEmulated } from './emulator';
import {
  deploymentObject,
  type KubeDeployment,
  type KubeScaledObject,
  kedaBoundsProblem,
  kedaHpaObject,
  kubectlJson,
  kubectlList,
  MAX_INT32,
  type ResolvedScaledObject,
  scaledObjectFromPatch,
  scaledObjectObject,
} from './kubeObjects';
import { ARM_HOST } from './operations';
import { normalizeLocation, resourceIdOf } from './resourceId';
import { compareVersions, DEFAULT_KUBERNETES_VERSIONS, type ResolvedKubernetesVersion } from './scenario';

export const AKS_NAMESPACE = 'Microsoft.ContainerService';
const MAX_COMMAND_LENGTH = 4096;
const MAX_STEPS = 20;

export interface AksCluster {
  name: string;
  resourceGroup: string;
  location: string;
  id: string;
  /** Every deployment the cluster runs, by `namespace/name` (with its ScaledObject, if any). */
  deployments: Map<string, KubeDeployment>;
  /** The last `metadata.resourceVersion` handed out (one counter per cluster, as etcd's revision). */
  resourceVersion: number;
  kubernetesVersion: string;
  nodeVersion: string;
  /** Entra ID integration: run commands need a `clusterToken`. */
  aad: boolean;
}

/** Kubernetes' timestamps: RFC 3339 in seconds. */
const kubeTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

const HPA_TYPES = [
  'hpa',
  'horizontalpodautoscaler',
  'horizontalpodautoscalers',
  'horizontalpodautoscalers.autoscaling',
];
const DEPLOYMENT_TYPES = ['deployment', 'deployments', 'deploy', 'deployment.apps', 'deployments.apps'];
const SCALED_OBJECT_TYPES = [
  'scaledobject',
  'scaledobjects',
  'so',
  'scaledobject.keda.sh',
  'scaledobjects.keda.sh',
];
/** The output formats kubectl knows (its error lists them); the sandbox prints `json` only. */
const OUTPUT_FORMATS = [
  'custom-columns',
  'custom-columns-file',
  'go-template',
  'go-template-file',
  'json',
  'jsonpath',
  'jsonpath-as-json',
  'jsonpath-file',
  'name',
  'template',
  'templatefile',
  'wide',
  'yaml',
];

/** kubectl's flags the sandbox reads, and which verbs take them (another is kubectl's unknown flag). */
const FLAG_VERBS: Record<string, string[]> = {
  namespace: ['rollout', 'get', 'scale', 'patch'],
  timeout: ['rollout', 'scale'],
  watch: ['rollout', 'get'],
  output: ['get', 'scale', 'patch'],
  replicas: ['scale'],
  type: ['patch'],
  patch: ['patch'],
};

interface KubectlFlags {
  namespace: string;
  timeoutMs: number | undefined;
  watch: boolean;
  output: string | undefined;
  replicas: string | undefined;
  type: string | undefined;
  patch: string | undefined;
}

/** The minor version of a patch version (`1.33.2` -> `1.33`). */
const minorOf = (version: string) => version.split('.').slice(0, 2).join('.');

interface StepResult {
  exit: number;
  log: string;
}

/** A step that must wait on the sandbox clock: evaluated again at `until` (undefined: never on its own). */
interface Waiting {
  until: number | undefined;
  resume: (nowMs: number) => StepResult | Waiting;
}

interface CommandRun {
  id: string;
  cluster: AksCluster;
  startedMs: number;
  steps: Array<{ tokens: string[]; op: '&&' | ';' | undefined }>;
  index: number;
  logs: string[];
  lastExit: number;
  waiting: Waiting | undefined;
  finishedMs: number | undefined;
}

/** Splits a shell line into `kubectl ...` steps joined by `&&` or `;` (quotes honoured, nothing else). */
function parseCommand(command: string): Array<{ tokens: string[]; op: '&&' | ';' | undefined }> | string {
  const steps: Array<{ tokens: string[]; op: '&&' | ';' | undefined }> = [];
  let tokens: string[] = [];
  let current = '';
  let quote: string | undefined;
  let inToken = false;
  const endToken = () => {
    if (inToken) tokens.push(current);
    current = '';
    inToken = false;
  };
  const endStep = (op: '&&' | ';') => {
    endToken();
    if (tokens.length === 0) return false;
    steps.push({ tokens, op });
    tokens = [];
    return true;
  };
  for (let i = 0; i < command.length; i++) {
    const ch = command[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else current += ch;
      continue;
    }
    if (ch === '"' || ch === "'") {
      quote = ch;
      inToken = true;
    } else if (ch === '&' && command[i + 1] === '&') {
      if (!endStep('&&')) return "bash: syntax error near unexpected token `&&'";
      i++;
    } else if (ch === ';') {
      if (!endStep(';')) return "bash: syntax error near unexpected token `;'";
    } else if (/\s/.test(ch)) endToken();
    else if ('|<>`$()'.includes(ch))
      return `sandbox: the shell operator '${ch}' is not emulated (only && and ;)`;
    else {
      current += ch;
      inToken = true;
    }
  }
  if (quote) return 'bash: unexpected EOF while looking for matching quote';
  endToken();
  if (tokens.length > 0) steps.push({ tokens, op: undefined });
  else if (steps.length > 0) steps[steps.length - 1]!.op = undefined;
  return steps;
}

/** Go durations as kubectl reads them (`300s`, `5m`, `1h30m`, `0`); undefined when malformed. */
function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  const parts = /^(?:(\d+(?:\.\d+)?)(ms|s|m|h))+$/.test(text)
    ? text.match(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)
    : null;
  if (!parts) return undefined;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  return parts.reduce((sum, part) => {
    const [, n, u] = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(part)!;
    return sum + Number(n) * unit[u!]!;
  }, 0);
}

export class AksClusters implements ArmProvider, WorldTicker {
  readonly namespace = AKS_NAMESPACE;
  readonly types = ['managedClusters'] as const;
  private readonly clusters = new Map<string, AksCluster>();
  private readonly runs = new Map<string, CommandRun>();
  private count = 0;

  constructor(
    private readonly subscriptionId: string,
    private readonly clock: SandboxClock,
    private readonly seed: string,
    private readonly consumers: () => ConsumerWorld,
    /** Kubernetes versions per location; a location without an entry offers the default catalog. */
    private readonly versions: Record<string, ResolvedKubernetesVersion[]> = {},
  ) {}

  add(spec: {
    name: string;
    resourceGroup: string;
    location: string;
    /** `replicas` defaults to 1, without a ScaledObject (a deployment known only as a consumer). */
    deployments: Array<{
      namespace: string;
      name: string;
      replicas?: number;
      scaledObject?: ResolvedScaledObject | undefined;
    }>;
    kubernetesVersion?: string;
    nodeVersion?: string;
    aad?: boolean;
  }): AksCluster {
    const kubernetesVersion = spec.kubernetesVersion ?? '1.33.3';
    const createdAt = kubeTime(this.clock.now().getTime());
    const cluster: AksCluster = {
      name: spec.name,
      resourceGroup: spec.resourceGroup,
      location: spec.location,
      kubernetesVersion,
      nodeVersion: spec.nodeVersion ?? kubernetesVersion,
      id: resourceIdOf(this.subscriptionId, spec.resourceGroup, AKS_NAMESPACE, [
        { type: 'managedClusters', name: spec.name },
      ]),
      deployments: new Map(),
      resourceVersion: 1000,
      aad: spec.aad === true,
    };
    for (const d of spec.deployments) {
      const key = `${d.namespace}/${d.name}`;
      if (cluster.deployments.has(key)) continue;
      const uid = (kind: string) => seededUuid(this.seed, 'k8s', kind, spec.name.toLowerCase(), key);
      cluster.deployments.set(key, {
        namespace: d.namespace,
        name: d.name,
        replicas: d.replicas ?? 1,
        uid: uid('deployment'),
        generation: 1,
        resourceVersion: ++cluster.resourceVersion,
        revision: 1,
        restartedAt: undefined,
        createdAt,
        scaledObject: d.scaledObject
          ? {
              ...d.scaledObject,
              uid: uid('scaledobject'),
              generation: 1,
              resourceVersion: ++cluster.resourceVersion,
              createdAt,
            }
          : undefined,
      });
    }
    this.clusters.set(spec.name.toLowerCase(), cluster);
    return cluster;
  }

  all(): AksCluster[] {
    return [...this.clusters.values()];
  }

  lookup(_type: string, name: string) {
    return this.clusters.get(name.toLowerCase());
  }

  handle(req: ArmRequest): SandboxReply {
    const cluster = this.clusters.get(req.path.chain[0]!.name.toLowerCase())!;
    const chain = req.path.chain;
    const action = req.path.action?.toLowerCase();
    if (chain.length === 1 && action === undefined && req.method === 'GET') {
      return {
        status: 200,
        body: {
          id: cluster.id,
          name: cluster.name,
          type: `${AKS_NAMESPACE}/ManagedClusters`,
          location: cluster.location,
          properties: {
            provisioningState: 'Succeeded',
            powerState: { code: 'Running' },
            kubernetesVersion: cluster.kubernetesVersion,
            currentKubernetesVersion: cluster.kubernetesVersion,
            fqdn: `${cluster.name}-dns.hcp.${cluster.location}.azmk8s.io`,
            enableRBAC: true,
            ...(cluster.aad ? { aadProfile: { managed: true, enableAzureRBAC: true } } : {}),
            agentPoolProfiles: [
              {
                name: 'nodepool1',
                count: 3,
                vmSize: 'Standard_DS2_v2',
                mode: 'System',
                osType: 'Linux',
                type: 'VirtualMachineScaleSets',
                orchestratorVersion: cluster.nodeVersion,
                currentOrchestratorVersion: cluster.nodeVersion,
                provisioningState: 'Succeeded',
                powerState: { code: 'Running' },
              },
            ],
          },
        },
      };
    }
    if (
      chain.length === 2 &&
      chain[1]!.type.toLowerCase() === 'upgradeprofiles' &&
      action === undefined &&
      req.method === 'GET'
    ) {
      if (chain[1]!.name.toLowerCase() !== 'default') {
        // Not verified against Azure: the answer for a profile other than `default`.
        return azureError(404, 'NotFound', `The upgrade profile '${chain[1]!.name}' was not found.`);
      }
      return { status: 200, body: this.upgradeProfile(cluster) };
    }
    if (chain.length === 1 && action === 'runcommand' && req.method === 'POST')
      return this.runCommand(req, cluster);
    if (
      chain.length === 2 &&
      chain[1]!.type.toLowerCase() === 'commandresults' &&
      action === undefined &&
      req.method === 'GET'
    ) {
      return this.result(req, cluster, chain[1]!.name);
    }
    return notEmulated(
      req.method,
      req.url.pathname,
      'managed cluster operations other than GET, runCommand, commandResults and upgradeProfiles',
    );
  }

  /** `GET /subscriptions/{sub}/providers/Microsoft.ContainerService/locations/{loc}/kubernetesVersions`. */
  handleProviderPath(req: ArmProviderPathRequest): SandboxReply {
    const [first, location, collection, ...rest] = req.path.segments;
    if (
      req.path.subscriptionId === undefined ||
      first?.toLowerCase() !== 'locations' ||
      location === undefined ||
      collection?.toLowerCase() !== 'kubernetesversions' ||
      rest.length > 0
    )
      return notEmulated(req.method, req.url.pathname, 'AKS provider paths other than kubernetesVersions');
    if (req.method !== 'GET')
      return notEmulated(req.method, req.url.pathname, 'kubernetesVersions is read-only');
    const catalog = this.catalog(location);
    return {
      status: 200,
      body: {
        values: catalog.map((v) => ({
          version: v.version,
          ...(v.isDefault ? { isDefault: true } : {}),
          ...(v.isPreview ? { isPreview: true } : {}),
          capabilities: { supportPlan: v.supportPlans },
          patchVersions: Object.fromEntries(
            v.patches.map((patch) => [
              patch,
              { upgrades: this.upgradesFrom(patch, catalog).map((u) => u.version) },
            ]),
          ),
        })),
      },
    };
  }

  private catalog(location: string): ResolvedKubernetesVersion[] {
    const wanted = normalizeLocation(location);
    const entry = Object.entries(this.versions).find(([loc]) => normalizeLocation(loc) === wanted);
    return entry ? entry[1] : DEFAULT_KUBERNETES_VERSIONS;
  }

  /** The versions AKS upgrades `version` to: later patches of its minor, then the next minor's patches. */
  private upgradesFrom(
    version: string,
    catalog: ResolvedKubernetesVersion[],
  ): Array<{ version: string; isPreview: boolean }> {
    const minors = catalog.map((v) => v.version);
    const minor = minorOf(version);
    const next = minors.filter((m) => compareVersions(m, minor) > 0).sort(compareVersions)[0];
    return catalog
      .filter((v) => v.version === minor || v.version === next)
      .flatMap((v) => v.patches.map((patch) => ({ version: patch, isPreview: v.isPreview })))
      .filter((u) => compareVersions(u.version, version) > 0)
      .sort((a, b) => compareVersions(a.version, b.version));
  }

  private upgradeProfile(cluster: AksCluster) {
    const catalog = this.catalog(cluster.location);
    const upgrades = (version: string) =>
      this.upgradesFrom(version, catalog).map((u) => ({
        kubernetesVersion: u.version,
        ...(u.isPreview ? { isPreview: true } : {}),
      }));
    return {
      // Lower-case `resourcegroups` and `upgradeprofiles`, as the published example.
      id: `/subscriptions/${this.subscriptionId}/resourcegroups/${cluster.resourceGroup}/providers/${AKS_NAMESPACE}/managedClusters/${cluster.name}/upgradeprofiles/default`,
      name: 'default',
      type: `${AKS_NAMESPACE}/managedClusters/upgradeprofiles`,
      properties: {
        controlPlaneProfile: {
          kubernetesVersion: cluster.kubernetesVersion,
          name: 'master',
          osType: 'Linux',
          upgrades: upgrades(cluster.kubernetesVersion),
        },
        agentPoolProfiles: [
          {
            kubernetesVersion: cluster.nodeVersion,
            name: 'nodepool1',
            osType: 'Linux',
            upgrades: upgrades(cluster.nodeVersion),
          },
        ],
      },
    };
  }

  private location(cluster: AksCluster, id: string, apiVersion: string): string {
    return `https://${ARM_HOST}/subscriptions/${this.subscriptionId}/resourcegroups/${cluster.resourceGroup}/providers/${AKS_NAMESPACE}/managedClusters/${cluster.name}/commandResults/${id}?api-version=${apiVersion}`;
  }

  private runCommand(req: ArmRequest, cluster: AksCluster): SandboxReply {
    const body = req.body as { command?: unknown } | undefined;
    const command = body?.command;
    if (typeof command !== 'string' || command.trim() === '') {
      return azureError(
        400,
        'InvalidParameter',
        "The value of parameter 'requestPayload.command' is invalid: a command is required.",
      );
    }
    // AKS's answer when an Entra-enabled cluster gets no token (azure-rest-api-specs issue 22480, verbatim).
    const token = (req.body as { clusterToken?: unknown } | undefined)?.clusterToken;
    if (cluster.aad && (typeof token !== 'string' || token === ''))
      return azureError(
        400,
        'MissingAADClusterToken',
        'This cluster have Azure Active Directory enabled, .clusterToken is required.',
      );
    if (command.length > MAX_COMMAND_LENGTH) {
      return azureError(
        400,
        'InvalidParameter',
        `The command is longer than ${MAX_COMMAND_LENGTH} characters.`,
      );
    }
    // Command ids are 32 hex digits, as AKS's; they derive from the seed and the order commands ran in.
    const id = seededUuid(this.seed, 'aks-command', this.count++).replace(/-/g, '');
    const parsed = parseCommand(command);
    const nowMs = this.clock.now().getTime();
    const run: CommandRun = {
      id,
      cluster,
      startedMs: nowMs,
      steps: typeof parsed === 'string' ? [] : parsed,
      index: 0,
      logs: typeof parsed === 'string' ? [parsed] : [],
      lastExit: typeof parsed === 'string' ? 2 : 0,
      waiting: undefined,
      finishedMs: undefined,
    };
    if (typeof parsed !== 'string' && parsed.length > MAX_STEPS) {
      run.steps = [];
      run.logs = [`sandbox: at most ${MAX_STEPS} commands per line`];
      run.lastExit = 2;
    }
    this.runs.set(id, run);
    this.advance(run, nowMs);
    return {
      status: 202,
      headers: { location: this.location(cluster, id, req.apiVersion), 'retry-after': '0' },
    };
  }

  private result(req: ArmRequest, cluster: AksCluster, commandId: string): SandboxReply {
    const run = this.runs.get(commandId.toLowerCase());
    if (!run || run.cluster !== cluster) {
      return azureError(404, 'NotFound', `The command result '${commandId}' was not found.`);
    }
    if (run.finishedMs === undefined) {
      return {
        status: 202,
        headers: { location: this.location(cluster, run.id, req.apiVersion), 'retry-after': '0' },
      };
    }
    return {
      status: 200,
      body: {
        id: run.id,
        properties: {
          // As the live service writes it (docs/sandbox.md, "Fidelity"); the adapters read it case-insensitively.
          provisioningState: 'Succeeded',
          exitCode: run.lastExit,
          startedAt: new Date(run.startedMs).toISOString().replace(/\.\d{3}Z$/, 'Z'),
          finishedAt: new Date(run.finishedMs).toISOString().replace(/\.\d{3}Z$/, 'Z'),
          logs: run.logs.join('\n'),
        },
      },
    };
  }

  /** Runs steps until one waits or the line ends. */
  private advance(run: CommandRun, nowMs: number): void {
    if (run.waiting) {
      if (run.waiting.until === undefined || run.waiting.until > nowMs) return;
      const outcome = run.waiting.resume(nowMs);
      if ('resume' in outcome) {
        run.waiting = outcome;
        return;
      }
      run.waiting = undefined;
      this.record(run, outcome);
      run.index += 1;
    }
    while (run.index < run.steps.length) {
      const previous = run.steps[run.index - 1];
      if (previous?.op === '&&' && run.lastExit !== 0) {
        // A failed `a && b` skips b and everything chained to it until the next `;`.
        while (run.index < run.steps.length && run.steps[run.index - 1]?.op === '&&') run.index += 1;
        continue;
      }
      const outcome = this.execute(run.cluster, run.steps[run.index]!.tokens, nowMs);
      if ('resume' in outcome) {
        run.waiting = outcome;
        return;
      }
      this.record(run, outcome);
      run.index += 1;
    }
    run.finishedMs = nowMs;
  }

  private record(run: CommandRun, outcome: StepResult): void {
    if (outcome.log !== '') run.logs.push(outcome.log);
    run.lastExit = outcome.exit;
  }

  private execute(cluster: AksCluster, tokens: string[], nowMs: number): StepResult | Waiting {
    const [program, ...args] = tokens;
    if (program !== 'kubectl') return { exit: 127, log: `bash: ${program}: command not found` };
    const flags: KubectlFlags = {
      namespace: 'default',
      timeoutMs: undefined,
      watch: true,
      output: undefined,
      replicas: undefined,
      type: undefined,
      patch: undefined,
    };
    const seen: Array<[string, string]> = [];
    const positional: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      // `-ojson`: a short flag with its value attached.
      const [flag, inline] = /^-o[^=-]/.test(arg)
        ? ['-o', arg.slice(2)]
        : arg.startsWith('-') && arg.includes('=')
          ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
          : [arg, undefined];
      const value = () => inline ?? args[++i] ?? '';
      if (flag === '-n' || flag === '--namespace') {
        flags.namespace = value();
        seen.push(['namespace', flag]);
      } else if (flag === '--timeout') {
        const text = value();
        const ms = parseDuration(text);
        if (ms === undefined)
          return {
            exit: 1,
            log: `error: invalid argument "${text}" for "--timeout" flag: time: invalid duration "${text}"`,
          };
        flags.timeoutMs = ms === 0 ? undefined : ms;
        seen.push(['timeout', flag]);
      } else if (flag === '--watch' || flag === '-w') {
        flags.watch = (inline ?? 'true') !== 'false';
        seen.push(['watch', flag]);
      } else if (flag === '-o' || flag === '--output') {
        flags.output = value();
        seen.push(['output', flag]);
      } else if (flag === '--replicas') {
        flags.replicas = value();
        seen.push(['replicas', flag]);
      } else if (flag === '--type') {
        flags.type = value();
        seen.push(['type', flag]);
      } else if (flag === '-p' || flag === '--patch') {
        flags.patch = value();
        seen.push(['patch', flag]);
      } else if (flag.startsWith('-')) return { exit: 1, log: `error: unknown flag: ${flag}` };
      else positional.push(arg);
    }
    const [verb, ...rest] = positional;
    const verbs = ['rollout', 'get', 'scale', 'patch'];
    if (verb === undefined || !verbs.includes(verb)) {
      return {
        exit: 1,
        log: `sandbox: ${['kubectl', verb].filter(Boolean).join(' ')} is not emulated (only kubectl rollout restart|status, get, scale and patch)`,
      };
    }
    for (const [key, flag] of seen)
      if (!FLAG_VERBS[key]!.includes(verb)) return { exit: 1, log: `error: unknown flag: ${flag}` };
    if (verb === 'get') return this.get(cluster, rest, flags);
    if (verb === 'scale') return this.scale(cluster, rest, flags);
    if (verb === 'patch') return this.patch(cluster, rest, flags);
    const { namespace, timeoutMs, watch } = flags;
    const [sub, resource, maybeName] = rest;
    if (sub !== 'restart' && sub !== 'status')
      return { exit: 1, log: `error: unknown command "${sub ?? ''}" for "kubectl rollout"` };
    const match = /^(deployment|deployments|deploy|deployment\.apps)(?:\/(.+))?$/.exec(resource ?? '');
    const name = match?.[2] ?? (match ? maybeName : undefined);
    if (!match || !name)
      return {
        exit: 1,
        log: 'error: the sandbox emulates deployments only: kubectl rollout <restart|status> deployment/<name>',
      };
    const consumers = this.consumers().find(
      (c) =>
        c.target.kind === 'aksDeployment' &&
        c.target.clusterId === cluster.id &&
        c.target.namespace === namespace &&
        c.target.deployment === name,
    );
    const deployment = cluster.deployments.get(`${namespace}/${name}`);
    if (!deployment) {
      return { exit: 1, log: `Error from server (NotFound): deployments.apps "${name}" not found` };
    }
    if (sub === 'restart') {
      // kubectl annotates the pod template: a new spec, a new ReplicaSet revision.
      deployment.restartedAt = kubeTime(nowMs);
      deployment.revision += 1;
      this.changed(cluster, deployment);
      for (const consumer of consumers) this.consumers().startRoll(consumer.name, 'aksRunCommand');
      return { exit: 0, log: `deployment.apps/${name} restarted` };
    }
    const deadline = timeoutMs === undefined ? undefined : nowMs + timeoutMs;
    const world = this.consumers();
    const status = (at: number): StepResult | Waiting => {
      const running = consumers.map((c) => world.runningRoll(c.name)).filter((r) => r !== undefined);
      if (running.length === 0) {
        // kubectl reads the deployment's conditions: a rollout that failed stays failed until the next one.
        if (consumers.some((c) => world.lastRoll(c.name)?.status === 'failed')) {
          return { exit: 1, log: `error: deployment "${name}" exceeded its progress deadline` };
        }
        return { exit: 0, log: `deployment "${name}" successfully rolled out` };
      }
      const waitingLine = `Waiting for deployment "${name}" rollout to finish: 0 of 1 updated replicas are available...`;
      if (!watch) return { exit: 0, log: waitingLine };
      if (deadline !== undefined && at >= deadline)
        return { exit: 1, log: `${waitingLine}\nerror: timed out waiting for the condition` };
      const ends = running.map((r) => (r.endsAt === null ? Number.POSITIVE_INFINITY : Date.parse(r.endsAt)));
      const until = Math.min(...ends, deadline ?? Number.POSITIVE_INFINITY);
      return { until: Number.isFinite(until) ? until : undefined, resume: (later) => status(later) };
    };
    return status(nowMs);
  }

  // --- kubectl get / scale / patch on deployments and ScaledObjects ---

  /** A spec changed: a new generation (the controller observes it at once) and resource version. */
  private changed(cluster: AksCluster, object: KubeDeployment | KubeScaledObject): void {
    object.generation += 1;
    object.resourceVersion = ++cluster.resourceVersion;
  }

  /**
   * `<type>/<name>` or `<type> <name>`: which kind, the name, or the message to print. A ScaledObject
   * on a cluster without any is kubectl's answer when KEDA is not installed (no such resource type).
   */
  private reference(
    cluster: AksCluster,
    verb: string,
    args: string[],
  ): { kind: 'deployment' | 'scaledobject'; name: string } | StepResult {
    const [first, second, ...extra] = args;
    if (first === undefined)
      return { exit: 1, log: `sandbox: kubectl ${verb} without a resource is not emulated` };
    const slash = first.indexOf('/');
    const type = (slash >= 0 ? first.slice(0, slash) : first).toLowerCase();
    const name = slash >= 0 ? first.slice(slash + 1) : second;
    const more = slash >= 0 ? [second, ...extra].filter((x) => x !== undefined) : extra;
    const kind = DEPLOYMENT_TYPES.includes(type)
      ? 'deployment'
      : SCALED_OBJECT_TYPES.includes(type)
        ? 'scaledobject'
        : undefined;
    if (!kind)
      return {
        exit: 1,
        log: `sandbox: kubectl ${verb} ${type} is not emulated (only deployments and scaledobjects)`,
      };
    if (kind === 'scaledobject' && ![...cluster.deployments.values()].some((d) => d.scaledObject))
      return { exit: 1, log: `error: the server doesn't have a resource type "${type}"` };
    if (!name)
      return { exit: 1, log: `sandbox: kubectl ${verb} ${type} without a name (a list) is not emulated` };
    if (more.length > 0)
      return { exit: 1, log: `sandbox: kubectl ${verb} of several objects at once is not emulated` };
    return { kind, name };
  }

  private deployment(cluster: AksCluster, namespace: string, name: string): KubeDeployment | StepResult {
    return (
      cluster.deployments.get(`${namespace}/${name}`) ?? {
        exit: 1,
        log: `Error from server (NotFound): deployments.apps "${name}" not found`,
      }
    );
  }

  private scaledObject(
    cluster: AksCluster,
    namespace: string,
    name: string,
  ): { deployment: KubeDeployment; so: KubeScaledObject } | StepResult {
    for (const deployment of cluster.deployments.values())
      if (deployment.namespace === namespace && deployment.scaledObject?.name === name)
        return { deployment, so: deployment.scaledObject };
    return { exit: 1, log: `Error from server (NotFound): scaledobjects.keda.sh "${name}" not found` };
  }

  private replicaSetHash(cluster: AksCluster, d: KubeDeployment): string {
    // The pod-template-hash of the current ReplicaSet: 10 characters, new with each revision.
    return seededUuid(
      this.seed,
      'k8s-replicaset',
      cluster.name.toLowerCase(),
      d.namespace,
      d.name,
      d.revision,
    )
      .replace(/-/g, '')
      .slice(0, 10);
  }

  /** `kubectl get <type>/<name> -n <ns> -o json`, or `kubectl get hpa -n <ns> -o json` (a list). */
  private get(cluster: AksCluster, args: string[], flags: KubectlFlags): StepResult {
    if (HPA_TYPES.includes((args[0] ?? '').toLowerCase()) && args.length === 1) {
      if (flags.output !== 'json')
        return { exit: 1, log: 'sandbox: kubectl get hpa prints -o json only (tables are not emulated)' };
      // KEDA's HPAs (one per ScaledObject) are the only ones the sandbox's clusters have.
      const items = [...cluster.deployments.values()]
        .filter((d) => d.namespace === flags.namespace && d.scaledObject)
        .sort((a, b) => a.scaledObject!.name.localeCompare(b.scaledObject!.name))
        .map((d) => kedaHpaObject(d, d.scaledObject!));
      return { exit: 0, log: kubectlJson(kubectlList(items)) };
    }
    const ref = this.reference(cluster, 'get', args);
    if ('exit' in ref) return ref;
    if (flags.output === undefined)
      return { exit: 1, log: 'sandbox: kubectl get prints -o json only (tables are not emulated)' };
    if (!OUTPUT_FORMATS.includes(flags.output.split('=')[0]!))
      return {
        exit: 1,
        log: `error: unable to match a printer suitable for the output format "${flags.output}", allowed formats are: ${OUTPUT_FORMATS.join(',')}`,
      };
    if (flags.output !== 'json')
      return { exit: 1, log: `sandbox: kubectl get -o ${flags.output} is not emulated (only -o json)` };
    if (ref.kind === 'deployment') {
      const d = this.deployment(cluster, flags.namespace, ref.name);
      if ('exit' in d) return d;
      return { exit: 0, log: kubectlJson(deploymentObject(d, this.replicaSetHash(cluster, d))) };
    }
    const found = this.scaledObject(cluster, flags.namespace, ref.name);
    if ('exit' in found) return found;
    return { exit: 0, log: kubectlJson(scaledObjectObject(found.deployment, found.so)) };
  }

  /** `kubectl scale deployment/<name> -n <ns> --replicas=<N>` (kubectl's flag checks, then the server's). */
  private scale(cluster: AksCluster, args: string[], flags: KubectlFlags): StepResult {
    const required =
      'error: The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0';
    if (flags.replicas !== undefined && !/^[+-]?\d+$/.test(flags.replicas))
      return {
        exit: 1,
        log: `error: invalid argument "${flags.replicas}" for "--replicas" flag: strconv.ParseInt: parsing "${flags.replicas}": invalid syntax`,
      };
    const replicas = flags.replicas === undefined ? -1 : Number(flags.replicas);
    if (replicas < 0) return { exit: 1, log: required };
    if (flags.output !== undefined) return { exit: 1, log: 'sandbox: kubectl scale -o is not emulated' };
    const ref = this.reference(cluster, 'scale', args);
    if ('exit' in ref) return ref;
    if (ref.kind !== 'deployment')
      return { exit: 1, log: 'sandbox: kubectl scale is emulated for deployments only' };
    if (replicas > MAX_INT32)
      return { exit: 1, log: `sandbox: replicas above ${MAX_INT32} (int32) are not emulated` };
    const d = this.deployment(cluster, flags.namespace, ref.name);
    if ('exit' in d) return d;
    if (d.replicas !== replicas) {
      d.replicas = replicas;
      this.changed(cluster, d);
    }
    return { exit: 0, log: `deployment.apps/${d.name} scaled` };
  }

  /**
   * `kubectl patch scaledobject/<name> -n <ns> --type=merge -p '<json>'`: kubectl's checks of its
   * flags and of the patch text, then the server's (the object, the CRD's schema, KEDA's webhook).
   */
  private patch(cluster: AksCluster, args: string[], flags: KubectlFlags): StepResult {
    if (flags.patch === undefined || flags.patch === '')
      return {
        exit: 1,
        log: 'error: must specify --patch or --patch-file containing the contents of the patch',
      };
    const type = flags.type ?? 'strategic';
    if (!['json', 'merge', 'strategic'].includes(type))
      return { exit: 1, log: `error: --type must be one of [json merge strategic], not "${type}"` };
    if (flags.output !== undefined) return { exit: 1, log: 'sandbox: kubectl patch -o is not emulated' };
    const ref = this.reference(cluster, 'patch', args);
    if ('exit' in ref) return ref;
    if (ref.kind !== 'scaledobject')
      return { exit: 1, log: 'sandbox: kubectl patch is emulated for scaledobjects only' };
    let body: unknown;
    try {
      body = JSON.parse(flags.patch);
    } catch {
      // kubectl reads YAML too; the sandbox reads JSON only.
      return { exit: 1, log: `error: unable to parse "${flags.patch}": the sandbox reads JSON patches only` };
    }
    const found = this.scaledObject(cluster, flags.namespace, ref.name);
    if ('exit' in found) return found;
    if (type === 'strategic')
      // Custom resources take no strategic merge patch: the API server answers 415.
      return {
        exit: 1,
        log: 'Error from server (UnsupportedMediaType): the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
      };
    if (type === 'json')
      return { exit: 1, log: 'sandbox: kubectl patch --type=json is not emulated (use --type=merge)' };
    const { so } = found;
    const next = scaledObjectFromPatch(so, body);
    if ('error' in next) return { exit: 1, log: next.error };
    const denied = kedaBoundsProblem(next.bounds);
    if (denied)
      return {
        exit: 1,
        log: `Error from server (Forbidden): admission webhook "vscaledobject.kb.io" denied the request: ${denied}`,
      };
    if (
      next.bounds.minReplicaCount === so.minReplicaCount &&
      next.bounds.maxReplicaCount === so.maxReplicaCount
    )
      return { exit: 0, log: `scaledobject.keda.sh/${so.name} patched (no change)` };
    so.minReplicaCount = next.bounds.minReplicaCount;
    so.maxReplicaCount = next.bounds.maxReplicaCount;
    this.changed(cluster, so);
    return { exit: 0, log: `scaledobject.keda.sh/${so.name} patched` };
  }

  // --- the world: commands that wait on a roll resume when it ends or times out ---

  nextDueAt(): number | undefined {
    let min: number | undefined;
    for (const run of this.runs.values()) {
      const at = run.finishedMs === undefined ? run.waiting?.until : undefined;
      if (at !== undefined && (min === undefined || at < min)) min = at;
    }
    return min;
  }

  async fireDue(now: number): Promise<void> {
    for (const run of this.runs.values()) {
      if (run.finishedMs === undefined && run.waiting?.until !== undefined && run.waiting.until <= now)
        this.advance(run, now);
    }
  }
}
