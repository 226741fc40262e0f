/**
 * The real Bicep CLI for the infrastructure tests. It is located the way `npm run infra:build`
 * locates it (scripts/bicep-cli.ts: STAMPKEEPER_BICEP, PATH, az's copy, or the copy `.ci/run`
 * restored from NuGet); nothing is downloaded here. With no CLI the tests that need it are skipped
 * on a developer's machine (the test run says how to get one) and fail under CI, where `.ci/run`
 * fetches it: they are the only check that the Bicep compiles and is consistent with the code.
 */
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type BicepCli, installHint, locateBicep, runBicep } from '../../../scripts/bicep-cli';
import { type EvalContext, evaluateDeep } from './armEval';

export const ROOT = resolve(__dirname, '../../..');
export const INFRA = join(ROOT, 'infra');

/** Fixed deployment scope for snapshots. */
export const SCOPE = {
  subscriptionId: '00000000-0000-0000-0000-0000000000a1',
  tenantId: '00000000-0000-0000-0000-0000000000b2',
  location: 'westeurope',
};

let located: Promise<BicepCli> | undefined;

/** The CLI, or an error saying how to install or fetch one. */
export function bicep(): Promise<BicepCli> {
  located ??= locateBicep().then((cli) => {
    if (!cli) {
      throw new Error(
        `The infrastructure tests compile infra/ with the real Bicep CLI, and none was found. ${installHint()}`,
      );
    }
    return cli;
  });
  return located;
}

/** A scratch copy of infra/ (snapshots are written next to their parameter file). */
export async function copyInfra(): Promise<{ dir: string; dispose(): Promise<void> }> {
  const base = await mkdtemp(join(tmpdir(), 'stampkeeper-infra-'));
  const dir = join(base, 'infra');
  await cp(INFRA, dir, {
    recursive: true,
    filter: (src) => !src.endsWith('.snapshot.json') && src !== join(INFRA, 'main.bicepparam'),
  });
  return { dir, dispose: () => rm(base, { recursive: true, force: true }) };
}

export interface Resource {
  type: string;
  name: string;
  id: unknown;
  location?: string;
  kind?: string;
  sku?: Record<string, unknown>;
  tags?: Record<string, string>;
  identity?: Record<string, unknown>;
  properties?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface Deployment {
  /** Predicted resources, evaluated as far as known before deployment (see armEval.ts). */
  resources: Resource[];
  outputs: Record<string, unknown>;
  parameters: Record<string, unknown>;
  of(type: string): Resource[];
}

/**
 * What a parameter file deploys: `bicep build-params` for the parameter values, then `bicep
 * snapshot` (Azure Resource Manager's template engine over the compiled JSON, nested module
 * deployments expanded), whose remaining expressions are evaluated with those values.
 */
export async function deploymentOf(
  infraDir: string,
  paramFile: string,
  env: Record<string, string> = {},
): Promise<Deployment> {
  const cli = await bicep();
  const built = await runBicep(cli, ['build-params', paramFile, '--stdout'], { cwd: infraDir, env });
  if (built.code !== 0) throw new Error(`bicep build-params ${paramFile} failed:\n${built.stderr}`);
  const { parametersJson, templateJson } = JSON.parse(built.stdout) as {
    parametersJson: string;
    templateJson: string;
  };
  const given = JSON.parse(parametersJson).parameters as Record<string, { value: unknown }>;
  const declared = JSON.parse(templateJson).parameters as Record<string, { defaultValue?: unknown }>;
  const parameters: Record<string, unknown> = {};
  for (const [name, decl] of Object.entries(declared)) {
    if (name in given) parameters[name] = given[name]!.value;
    else if ('defaultValue' in decl) parameters[name] = decl.defaultValue;
  }

  const snap = await runBicep(
    cli,
    [
      'snapshot',
      paramFile,
      '--mode',
      'overwrite',
      '--subscription-id',
      SCOPE.subscriptionId,
      '--tenant-id',
      SCOPE.tenantId,
      '--location',
      SCOPE.location,
    ],
    { cwd: infraDir, env },
  );
  if (snap.code !== 0) throw new Error(`bicep snapshot ${paramFile} failed:\n${snap.stderr}${snap.stdout}`);
  const snapshotPath = join(infraDir, paramFile.replace(/\.bicepparam$/, '.snapshot.json'));
  const snapshot = JSON.parse(await readFile(snapshotPath, 'utf8')) as {
    predictedResources: Resource[];
    outputs: Record<string, unknown>;
    diagnostics: unknown[];
  };
  if (snapshot.diagnostics.length > 0) {
    throw new Error(`bicep snapshot ${paramFile}: ${JSON.stringify(snapshot.diagnostics)}`);
  }
  const context: EvalContext = { parameters };
  const resources = snapshot.predictedResources.map((r) => evaluateDeep(r, context) as Resource);
  return {
    resources,
    outputs: evaluateDeep(snapshot.outputs, context) as Record<string, unknown>,
    parameters,
    of: (type) => resources.filter((r) => r.type.toLowerCase() === type.toLowerCase()),
  };
}
