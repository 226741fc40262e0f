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
 * The command is a shell line of `kubectl` invocations joined by `&&` / `;`; the sandbox emulates
 * against the scenario's deployments (a deployment is a consumer of kind aksDeployment, or one listed
 * under the cluster's `deployments`):
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
  /** `namespace/name` of every deployment the cluster runs. */
  deployments: Set<string>;
  kubernetesVersion: string;
  nodeVersion: string;
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
    deployments: Array<{ namespace: string; name: string }>;
    kubernetesVersion?: string;
    nodeVersion?: string;
  }): AksCluster {
    const kubernetesVersion = spec.kubernetesVersion ?? '1.33.3';
    const cluster: AksCluster = {
      ...spec,
      kubernetesVersion,
      nodeVersion: spec.nodeVersion ?? kubernetesVersion,
      id: resourceIdOf(this.subscriptionId, spec.resourceGroup, AKS_NAMESPACE, [
        { type: 'managedClusters', name: spec.name },
      ]),
      deployments: new Set(spec.deployments.map((d) => `${d.namespace}/${d.name}`)),
    };
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
    let namespace = 'default';
    let timeoutMs: number | undefined;
    let watch = true;
    const positional: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const arg = args[i]!;
      const [flag, inline] = arg.includes('=')
        ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
        : [arg, undefined];
      const value = () => inline ?? args[++i] ?? '';
      if (flag === '-n' || flag === '--namespace') namespace = value();
      else if (flag === '--timeout') {
        const text = value();
        const ms = parseDuration(text);
        if (ms === undefined)
          return {
            exit: 1,
            log: `error: invalid argument "${text}" for "--timeout" flag: time: invalid duration "${text}"`,
          };
        timeoutMs = ms === 0 ? undefined : ms;
      } else if (flag === '--watch' || flag === '-w') watch = (inline ?? 'true') !== 'false';
      else if (flag.startsWith('-')) return { exit: 1, log: `error: unknown flag: ${flag}` };
      else positional.push(arg);
    }
    const [verb, sub, resource, maybeName] = positional;
    if (verb !== 'rollout') {
      return {
        exit: 1,
        log: `sandbox: kubectl ${verb ?? ''} is not emulated (only kubectl rollout restart|status)`.trim(),
      };
    }
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
    if (consumers.length === 0 && !cluster.deployments.has(`${namespace}/${name}`)) {
      return { exit: 1, log: `Error from server (NotFound): deployments.apps "${name}" not found` };
    }
    if (sub === 'restart') {
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
