/**
 * `npm run infra:env -- <environment>`: the parameter file azd reads extends the environment's
 * file, and each environment file refuses an azd environment of another name.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runBicep } from '../../../scripts/bicep-cli';
import { environments, selectEnvironment } from '../../../scripts/infra-env';
import { bicep, copyInfra } from './bicep';

describe.skipIf(!inject('bicepAvailable'))('npm run infra:env', () => {
  let infra: Awaited<ReturnType<typeof copyInfra>>;

  beforeAll(async () => {
    infra = await copyInfra();
  });

  afterAll(async () => {
    await infra?.dispose();
  });

  async function parameters(file: string, env: Record<string, string> = {}) {
    const result = await runBicep(await bicep(), ['build-params', file, '--stdout'], { cwd: infra.dir, env });
    if (result.code !== 0) return { error: result.stderr };
    return { parameters: JSON.parse(JSON.parse(result.stdout).parametersJson).parameters };
  }

  it('has one parameter file per environment, dev and prod', async () => {
    expect(await environments(infra.dir)).toEqual(['dev', 'prod']);
  });

  it("writes infra/main.bicepparam so that azd provisions with the environment's values", async () => {
    // Act
    const entry = await selectEnvironment('prod', infra.dir);
    const built = await parameters('main.bicepparam', { AZURE_ENV_NAME: 'prod' });

    // Assess
    expect(entry).toBe(join(infra.dir, 'main.bicepparam'));
    expect(await readFile(entry, 'utf8')).toContain("extends 'env/prod.bicepparam'");
    expect(built.parameters?.environmentName.value).toBe('prod');
    expect(built.parameters?.dryRun.value).toBe(false);
    expect(built.parameters?.vaultPlacements.value).toEqual({
      'stampkeeper-sandbox': { resourceGroup: 'rg-workload-prod' },
    });
  }, 30_000);

  it('refuses a selection that is not the azd environment', async () => {
    // Prepare
    await selectEnvironment('prod', infra.dir);

    // Act
    const built = await parameters('main.bicepparam', { AZURE_ENV_NAME: 'dev' });

    // Assess
    expect(built.error).toMatch(
      /infra\/env\/prod\.bicepparam is selected but the azd environment is dev: run npm run infra:env -- dev/,
    );
  }, 30_000);

  it('turns the function wiring off for the first provision only when asked', async () => {
    // Act
    const normal = await parameters('env/dev.bicepparam');
    const first = await parameters('env/dev.bicepparam', { STAMPKEEPER_WIRE_FUNCTIONS: 'false' });

    // Assess
    expect(normal.parameters?.wireFunctions.value).toBe(true);
    expect(first.parameters?.wireFunctions.value).toBe(false);
  }, 30_000);

  it('refuses an environment without a parameter file, and a name azd would not take', async () => {
    await expect(selectEnvironment('staging', infra.dir)).rejects.toThrow(
      /no parameter file infra\/env\/staging\.bicepparam \(environments: dev, prod\)/,
    );
    await expect(selectEnvironment('../prod', infra.dir)).rejects.toThrow(
      /lowercase letters, digits and dashes/,
    );
  });
});
