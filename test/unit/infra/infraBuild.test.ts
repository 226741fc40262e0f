/**
 * `npm run infra:build` with the real Bicep CLI: the repository's infra/ builds and lints clean,
 * and what infra/bicepconfig.json and the build script promise to refuse is refused.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildInfra, parseDiagnostics, previewApiVersions } from '../../../scripts/infra-build';
import { bicep, INFRA } from './bicep';

describe.skipIf(!inject('bicepAvailable'))('npm run infra:build', () => {
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'stampkeeper-infra-build-'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('builds and lints every .bicep and .bicepparam file of infra/ with no problem', async () => {
    // Act
    const result = await buildInfra({ cli: await bicep(), infraDir: INFRA });

    // Assess
    expect(result.failures).toEqual([]);
    expect(result.files.some((f) => f.endsWith('main.bicep'))).toBe(true);
    expect(result.files.filter((f) => f.endsWith('.bicepparam')).length).toBeGreaterThanOrEqual(2);
    // A bound, not a speed check: every file is a Bicep CLI process, ~50 s alone on a shared 2-core machine.
  }, 180_000);

  it('fails on unknown properties, secrets in outputs or defaults, hard-coded cloud URLs and preview API versions', async () => {
    // Prepare: one file per rule, with the project's bicepconfig.json.
    const dir = join(scratch, 'bad');
    await mkdir(dir, { recursive: true });
    await copyFile(join(INFRA, 'bicepconfig.json'), join(dir, 'bicepconfig.json'));
    const storage = (props: string) =>
      `param location string = resourceGroup().location\nresource sa 'Microsoft.Storage/storageAccounts@2025-06-01' = {\n  name: 'stbad\${uniqueString(resourceGroup().id)}'\n  location: location\n  kind: 'StorageV2'\n  sku: { name: 'Standard_LRS' }\n  properties: { ${props} }\n}\n`;
    await writeFile(
      join(dir, 'unknownProperty.bicep'),
      storage("minimumTlsVersion: 'TLS1_2', notAProperty: true"),
    );
    await writeFile(
      join(dir, 'secretOutput.bicep'),
      `${storage("minimumTlsVersion: 'TLS1_2'")}output keys object = sa.listKeys()\n`,
    );
    await writeFile(
      join(dir, 'secureDefault.bicep'),
      "@secure()\nparam password string = 'hunter2-not-secret'\noutput length int = length(password)\n",
    );
    await writeFile(
      join(dir, 'cloudUrl.bicep'),
      "output endpoint string = 'https://management.azure.com/'\n",
    );
    await writeFile(
      join(dir, 'preview.bicep'),
      "resource id 'Microsoft.ManagedIdentity/userAssignedIdentities@2025-01-31-preview' = {\n  name: 'id-preview'\n  location: resourceGroup().location\n}\n",
    );

    // Act
    const result = await buildInfra({ cli: await bicep(), infraDir: dir });
    const failuresOf = (file: string) => result.failures.filter((f) => f.includes(file)).join('\n');

    // Assess
    expect(failuresOf('unknownProperty.bicep')).toMatch(/Warning BCP037/);
    expect(failuresOf('secretOutput.bicep')).toMatch(/outputs-should-not-contain-secrets/);
    expect(failuresOf('secureDefault.bicep')).toMatch(/secure-parameter-default/);
    expect(failuresOf('cloudUrl.bicep')).toMatch(/no-hardcoded-env-urls/);
    // bicepconfig.json makes the analyzer rules errors (Bicep's defaults are warnings for some).
    const levels = new Map(result.diagnostics.map((d) => [d.code, d.level]));
    for (const rule of [
      'outputs-should-not-contain-secrets',
      'secure-parameter-default',
      'no-hardcoded-env-urls',
    ]) {
      expect(levels.get(rule), rule).toBe('Error');
    }
    expect(failuresOf('preview.bicep')).toMatch(
      /preview API version Microsoft\.ManagedIdentity\/userAssignedIdentities@2025-01-31-preview/,
    );
  }, 60_000);

  it('tolerates an old API version (a warning, not a failure)', async () => {
    // Prepare
    const dir = join(scratch, 'old');
    await mkdir(dir, { recursive: true });
    await copyFile(join(INFRA, 'bicepconfig.json'), join(dir, 'bicepconfig.json'));
    await writeFile(
      join(dir, 'old.bicep'),
      "resource id 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {\n  name: 'id-old'\n  location: resourceGroup().location\n}\n",
    );

    // Act
    const result = await buildInfra({ cli: await bicep(), infraDir: dir });

    // Assess
    expect(result.failures).toEqual([]);
    expect(result.diagnostics.map((d) => d.code)).toContain('use-recent-api-versions');
  }, 60_000);

  it('reads Bicep diagnostics and preview API versions', () => {
    // Act
    const diagnostics = parseDiagnostics(
      '/x/main.bicep(3,7) : Warning BCP037: The property "a" is not allowed. [https://aka.ms/x]\nnoise\n',
    );
    const previews = previewApiVersions({
      resources: [
        { type: 'A/b', apiVersion: '2024-01-01' },
        { properties: { template: { resources: { r: { type: 'C/d', apiVersion: '2024-01-01-preview' } } } } },
      ],
    });

    // Assess
    expect(diagnostics).toEqual([
      {
        file: '/x/main.bicep',
        line: 3,
        column: 7,
        level: 'Warning',
        code: 'BCP037',
        message: 'The property "a" is not allowed. [https://aka.ms/x]',
      },
    ]);
    expect(previews).toEqual(['C/d@2024-01-01-preview']);
  });
});
