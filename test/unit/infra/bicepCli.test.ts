/**
 * Finding the Bicep CLI: what is installed is used, nothing is downloaded unless asked for, and a
 * missing or too old CLI is an error that says what to do. Candidates are real executables made
 * for the test (a script answering `--version` like the CLI does).
 */
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BicepNotFoundError,
  cachedBicepPath,
  compareVersions,
  locateBicep,
  parseBicepVersion,
  resolveBicep,
} from '../../../scripts/bicep-cli';

describe('locating the Bicep CLI', () => {
  let scratch: string;
  /** An environment where nothing is installed: empty PATH, az config and cache folders. */
  let bare: NodeJS.ProcessEnv;

  async function fakeBicep(dir: string, version: string): Promise<string> {
    await mkdir(dir, { recursive: true });
    const path = join(dir, 'bicep');
    await writeFile(path, `#!/bin/sh\necho "Bicep CLI version ${version} (0000000000)"\n`);
    await chmod(path, 0o755);
    return path;
  }

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'stampkeeper-bicep-cli-'));
    bare = {
      PATH: join(scratch, 'empty-path'),
      AZURE_CONFIG_DIR: join(scratch, 'azure'),
      STAMPKEEPER_BICEP_CACHE: join(scratch, 'cache'),
    };
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('fails when none is installed, says how to get one, and downloads nothing', async () => {
    // Act
    const error = await resolveBicep({ env: bare }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(BicepNotFoundError);
    expect((error as Error).message).toMatch(/az bicep install/);
    expect((error as Error).message).toMatch(/npm run infra:build -- --fetch/);
    expect(await readdir(scratch)).toEqual([]);
  });

  it('uses a bicep on PATH', async () => {
    // Prepare
    const dir = join(scratch, 'path-bin');
    const path = await fakeBicep(dir, '0.49.2');

    // Act
    const cli = await locateBicep({ ...bare, PATH: dir });

    // Assess
    expect(cli).toEqual({ path, version: '0.49.2', source: 'PATH' });
  });

  it("uses the copy `az bicep install` put under the Azure CLI's folder", async () => {
    // Prepare
    const path = await fakeBicep(join(scratch, 'azure', 'bin'), '0.48.1');

    // Act
    const cli = await locateBicep(bare);

    // Assess
    expect(cli).toEqual({ path, version: '0.48.1', source: 'az' });
    await rm(join(scratch, 'azure'), { recursive: true });
  });

  it('uses the copy an earlier --fetch restored', async () => {
    // Prepare
    const target = cachedBicepPath(bare);
    await fakeBicep(join(target, '..'), '0.49.2');

    // Act
    const cli = await locateBicep(bare);

    // Assess
    expect(cli).toEqual({ path: target, version: '0.49.2', source: 'cache' });
    await rm(join(scratch, 'cache'), { recursive: true });
  });

  it('refuses a CLI older than the templates need, and a STAMPKEEPER_BICEP that is not a program', async () => {
    // Prepare
    const dir = join(scratch, 'old-bin');
    await fakeBicep(dir, '0.30.4');

    // Act
    const old = await locateBicep({ ...bare, PATH: dir }).catch((e: Error) => e.message);
    const missing = await locateBicep({ ...bare, STAMPKEEPER_BICEP: join(scratch, 'nope') }).catch(
      (e: Error) => e.message,
    );

    // Assess
    expect(old).toMatch(/Bicep CLI 0\.30\.4 .* is older than 0\.47\.0: upgrade it/);
    expect(missing).toMatch(/STAMPKEEPER_BICEP=.*nope is not an executable file/);
  });

  it('reads and compares versions', () => {
    expect(parseBicepVersion('Bicep CLI version 0.49.2 (b34271ac51)\n')).toBe('0.49.2');
    expect(parseBicepVersion('something else')).toBeUndefined();
    expect(compareVersions('0.49.2', '0.47.0')).toBeGreaterThan(0);
    expect(compareVersions('0.9.0', '0.10.0')).toBeLessThan(0);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
  });
});
