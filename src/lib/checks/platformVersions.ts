/**
 * Platform version support. AKS clusters: the control plane's and each node pool's version against
 * the versions AKS offers in the cluster's region (community support, long-term support only, or
 * none) and the upgrades its profile allows. The app's own runtime: the Node it runs on and the
 * extension bundle host.json asks for, against `runtimeSupport.ts`, the support data bundled with
 * the app (no API answers it), which is itself reported as stale once older than the policy allows.
 */
import type { ChecksPolicy, PlatformVersionsCheck } from '../config/policy';
import type {
  KubernetesClusterView,
  KubernetesInventory,
  KubernetesUpgradeProfile,
  KubernetesVersionView,
} from '../ports/inventory';
import type { Finding } from '../ports/reports';
import { parseResourceId } from './armIds';
import { unreadable } from './report';
import { RUNTIME_SUPPORT_DATA } from './runtimeSupport';

const DAY_MS = 86_400_000;

/** What the app runs on, as the platform reports it. */
export interface RuntimeFacts {
  /** `process.versions.node`, e.g. `22.12.0`. */
  node: string;
  /** host.json's `extensionBundle`, when it has one. */
  extensionBundle?: { id: string; version: string };
}

export interface RuntimeSupportData {
  checkedOn: string;
  sources: string[];
  node: Array<{ major: number; endOfSupport: string | null }>;
  extensionBundle: Array<{ major: number; endOfSupport: string | null }>;
}

export const RUNTIME_SUPPORT: RuntimeSupportData = RUNTIME_SUPPORT_DATA;

export interface PlatformVersionsDeps {
  kubernetes: KubernetesInventory;
  runtime: RuntimeFacts;
  now: Date;
  checks: ChecksPolicy;
  /** The support data (default: the bundled file). */
  support?: RuntimeSupportData;
  abortSignal?: AbortSignal;
}

/** Compares dotted version numbers numerically (`1.9` < `1.10`). */
function compareVersions(a: string, b: string): number {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const minorOf = (version: string) => version.split('.').slice(0, 2).join('.');

export async function checkPlatformVersions(
  check: PlatformVersionsCheck,
  deps: PlatformVersionsDeps,
): Promise<Finding[]> {
  const findings: Finding[] = [];
  const catalogs = new Map<string, Promise<KubernetesVersionView[]>>();
  for (const clusterId of check.aksClusters) {
    let cluster: KubernetesClusterView;
    let profile: KubernetesUpgradeProfile;
    let versions: KubernetesVersionView[];
    try {
      cluster = await deps.kubernetes.getCluster(clusterId, { abortSignal: deps.abortSignal });
      profile = await deps.kubernetes.getUpgradeProfile(clusterId, { abortSignal: deps.abortSignal });
      const { subscriptionId } = parseResourceId(clusterId);
      const key = `${subscriptionId}/${cluster.location}`.toLowerCase();
      let catalog = catalogs.get(key);
      if (!catalog) {
        catalog = deps.kubernetes.listVersions(subscriptionId, cluster.location, {
          abortSignal: deps.abortSignal,
        });
        catalogs.set(key, catalog);
      }
      versions = await catalog;
    } catch (error) {
      findings.push(
        unreadable(
          clusterId,
          'aks.version',
          'the AKS cluster, its upgrade profile or the versions of its region',
          error,
        ),
      );
      continue;
    }
    findings.push(...clusterFindings(clusterId, cluster, profile, versions));
  }
  if (check.runtime.enabled) findings.push(...runtimeFindings(check, deps));
  return findings;
}

function clusterFindings(
  subject: string,
  cluster: KubernetesClusterView,
  profile: KubernetesUpgradeProfile,
  versions: KubernetesVersionView[],
): Finding[] {
  const offered = versions.filter((v) => !v.isPreview);
  const community = offered.filter((v) => v.supportPlans.includes('KubernetesOfficial'));
  const evidence = {
    offered: versions.map((v) => ({
      minor: v.minor,
      patches: v.patches,
      preview: v.isPreview,
      supportPlans: v.supportPlans,
    })),
    upgrades: profile.controlPlane.upgrades,
  };
  const parts: Array<{
    name: string;
    version: string | undefined;
    upgrades: Array<{ version: string; isPreview: boolean }>;
  }> = [
    {
      name: 'control plane',
      version: cluster.version ?? profile.controlPlane.version,
      upgrades: profile.controlPlane.upgrades,
    },
    ...cluster.nodePools.map((p) => ({
      name: `node pool ${p.name}`,
      version: p.version,
      upgrades: profile.nodePools.find((n) => n.name === p.name)?.upgrades ?? [],
    })),
  ];
  const controlMinor = cluster.version ? minorOf(cluster.version) : undefined;
  return parts.map((part): Finding => {
    const facts: Finding['facts'] = {
      cluster: cluster.name,
      location: cluster.location,
      part: part.name,
      version: part.version ?? null,
    };
    if (!part.version) {
      return {
        subject,
        code: 'aks.version',
        status: 'unknown',
        title: `${cluster.name} ${part.name}: no version`,
        detail: `The cluster answered no version for its ${part.name}.`,
        facts,
      };
    }
    const minor = minorOf(part.version);
    const entry = offered.find((v) => v.minor === minor);
    const nextUpgrade = part.upgrades
      .filter((u) => !u.isPreview)
      .map((u) => u.version)
      .sort(compareVersions);
    const target = nextUpgrade.filter((v) => minorOf(v) !== minor)[0] ?? nextUpgrade.at(-1);
    const latestPatch = entry?.patches.at(-1);
    const upgradeAction = (why: string) => ({
      summary: `${why} Upgrade the ${part.name}${target ? ` to ${target}` : ''} (az aks upgrade${part.name === 'control plane' ? ' --control-plane-only' : ''} --kubernetes-version ${target ?? '<version>'}); upgrades allowed now: ${nextUpgrade.join(', ') || 'none listed'}.`,
    });
    const base = {
      subject,
      code: 'aks.version',
      facts: {
        ...facts,
        minor,
        latestPatch: latestPatch ?? null,
        supportPlans: entry ? entry.supportPlans.join(', ') : 'none',
        upgradesAvailable: nextUpgrade.join(', ') || 'none',
      },
      evidence,
    };
    if (!entry) {
      return {
        ...base,
        status: 'failed',
        title: `${cluster.name} ${part.name}: Kubernetes ${part.version} is no longer supported`,
        detail: `AKS in ${cluster.location} offers ${offered.map((v) => v.minor).join(', ') || 'no versions'}; ${minor} is not among them.`,
        action: upgradeAction('An unsupported version gets no fixes and AKS support may refuse cases.'),
      };
    }
    if (!entry.supportPlans.includes('KubernetesOfficial')) {
      return {
        ...base,
        status: 'warning',
        title: `${cluster.name} ${part.name}: Kubernetes ${minor} is supported only under long-term support`,
        detail: `AKS offers ${minor} under AKS long-term support only (the Premium tier): community support has ended.`,
        action: upgradeAction('Unless the cluster is on the Premium tier with long-term support,'),
      };
    }
    if (community[0]?.minor === minor && community.length > 1) {
      return {
        ...base,
        status: 'warning',
        title: `${cluster.name} ${part.name}: Kubernetes ${minor} is the oldest supported minor`,
        detail: `${minor} leaves community support when AKS releases its next minor version; plan the upgrade now.`,
        action: upgradeAction('Plan the upgrade before support ends.'),
      };
    }
    if (!entry.patches.includes(part.version)) {
      return {
        ...base,
        status: 'warning',
        title: `${cluster.name} ${part.name}: patch ${part.version} is no longer offered`,
        detail: `AKS offers ${entry.patches.join(', ')} for ${minor}.`,
        action: {
          summary: `Upgrade the ${part.name} to ${latestPatch} (a patch upgrade of the same minor).`,
        },
      };
    }
    if (part.name !== 'control plane' && controlMinor && compareVersions(minor, controlMinor) < 0) {
      return {
        ...base,
        status: 'warning',
        title: `${cluster.name} ${part.name}: behind the control plane (${part.version} < ${cluster.version})`,
        detail: 'Node pools should follow the control plane: a pool left behind falls out of support first.',
        action: upgradeAction('Bring the node pool up to the control plane.'),
      };
    }
    return {
      ...base,
      status: 'ok',
      title: `${cluster.name} ${part.name}: Kubernetes ${part.version} is supported`,
      detail:
        latestPatch && latestPatch !== part.version
          ? `Supported; a newer patch of ${minor} is available: ${latestPatch}.`
          : `Supported, on the latest patch of ${minor}.`,
    };
  });
}

function runtimeFindings(check: PlatformVersionsCheck, deps: PlatformVersionsDeps): Finding[] {
  const support = deps.support ?? RUNTIME_SUPPORT;
  const findings: Finding[] = [];
  const checkedOn = new Date(`${support.checkedOn}T00:00:00Z`);
  const ageDays = Math.floor((deps.now.getTime() - checkedOn.getTime()) / DAY_MS);
  const stale = Number.isNaN(ageDays) || ageDays > check.runtime.maxDataAgeDays;
  findings.push({
    subject: 'runtime/support-data',
    code: 'runtime.supportData',
    status: stale ? 'warning' : 'ok',
    title: stale
      ? `The runtime support data is stale (checked on ${support.checkedOn})`
      : `The runtime support data was checked on ${support.checkedOn}`,
    detail: stale
      ? `src/lib/checks/runtimeSupport.ts was last checked ${Number.isNaN(ageDays) ? 'on an unreadable date' : `${ageDays} days ago`}, more than the ${check.runtime.maxDataAgeDays} days the policy allows: what it says about Node and the extension bundle may be out of date.`
      : `Checked ${Math.max(0, ageDays)} days ago (at most ${check.runtime.maxDataAgeDays}).`,
    facts: {
      checkedOn: support.checkedOn,
      ageDays: Number.isNaN(ageDays) ? null : ageDays,
      maxDataAgeDays: check.runtime.maxDataAgeDays,
    },
    evidence: { sources: support.sources },
    ...(stale
      ? {
          action: {
            summary: `Read the sources (${support.sources.join(', ')}), update the entries and checkedOn in src/lib/checks/runtimeSupport.ts, and deploy.`,
          },
        }
      : {}),
  });
  const nodeMajor = Number.parseInt(deps.runtime.node.split('.')[0] ?? '', 10);
  findings.push(
    supportFinding(
      'runtime/node',
      'runtime.node',
      `Node ${deps.runtime.node}`,
      nodeMajor,
      support.node,
      support,
      check,
      deps.now,
      {
        upgrade:
          'Move the app to a supported Node: infra/modules/functionApp.bicep (runtime version), .nvmrc, package.json engines, the CI Node.',
      },
    ),
  );
  const bundle = deps.runtime.extensionBundle;
  if (!bundle) {
    findings.push({
      subject: 'runtime/extension-bundle',
      code: 'runtime.extensionBundle',
      status: 'warning',
      title: 'host.json names no extension bundle',
      detail:
        "Without an extension bundle the app's triggers depend on extensions installed another way; its support cannot be checked.",
      facts: {},
    });
  } else {
    const major = Number.parseInt(
      /^\s*[[(]\s*(\d+)/.exec(bundle.version)?.[1] ?? /^\s*(\d+)/.exec(bundle.version)?.[1] ?? '',
      10,
    );
    findings.push(
      supportFinding(
        'runtime/extension-bundle',
        'runtime.extensionBundle',
        `Extension bundle ${bundle.id} ${bundle.version}`,
        major,
        support.extensionBundle,
        support,
        check,
        deps.now,
        {
          upgrade:
            'Move host.json\'s extensionBundle.version to a supported major (e.g. "[4.*, 5.0.0)") and test the triggers.',
        },
      ),
    );
  }
  return findings;
}

function supportFinding(
  subject: string,
  code: string,
  what: string,
  major: number,
  entries: Array<{ major: number; endOfSupport: string | null }>,
  support: RuntimeSupportData,
  check: PlatformVersionsCheck,
  now: Date,
  text: { upgrade: string },
): Finding {
  const entry = entries.find((e) => e.major === major);
  const supported = entries
    .filter((e) => e.endOfSupport === null || Date.parse(e.endOfSupport) > now.getTime())
    .map((e) => e.major);
  const facts = {
    major: Number.isNaN(major) ? null : major,
    supportedMajors: supported.join(', '),
    dataCheckedOn: support.checkedOn,
  };
  if (!entry) {
    return {
      subject,
      code,
      status: 'warning',
      title: `${what}: not in the support data`,
      detail: `src/lib/checks/runtimeSupport.ts (checked on ${support.checkedOn}) says nothing about major ${Number.isNaN(major) ? '?' : major}: whether Azure Functions supports it is unknown here.`,
      facts,
      action: { summary: 'Check the sources and add the version to src/lib/checks/runtimeSupport.ts.' },
    };
  }
  const end = entry.endOfSupport === null ? undefined : new Date(`${entry.endOfSupport}T00:00:00Z`);
  const daysLeft = end ? Math.floor((end.getTime() - now.getTime()) / DAY_MS) : undefined;
  const withEnd = { ...facts, endOfSupport: entry.endOfSupport, daysLeft: daysLeft ?? null };
  if (daysLeft !== undefined && daysLeft <= 0) {
    return {
      subject,
      code,
      status: 'failed',
      title: `${what}: out of support since ${entry.endOfSupport}`,
      detail: 'Azure Functions no longer supports it: no fixes, and support cases need an upgrade first.',
      facts: withEnd,
      action: { summary: text.upgrade },
    };
  }
  if (daysLeft !== undefined && daysLeft <= check.runtime.warnDaysBeforeEnd) {
    return {
      subject,
      code,
      status: 'warning',
      title: `${what}: support ends on ${entry.endOfSupport} (${daysLeft} days)`,
      detail: `Support ends within ${check.runtime.warnDaysBeforeEnd} days: plan the upgrade.`,
      facts: withEnd,
      action: { summary: text.upgrade },
    };
  }
  return {
    subject,
    code,
    status: 'ok',
    title: `${what}: supported${entry.endOfSupport ? ` until ${entry.endOfSupport}` : ''}`,
    detail: entry.endOfSupport ? `${daysLeft} days of support left.` : 'No end of support announced.',
    facts: withEnd,
  };
}
