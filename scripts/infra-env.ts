/**
 * `npm run infra:env -- <environment>`: selects the environment whose parameter file azd uses.
 * azd reads `infra/main.bicepparam` and has no per-environment parameter file, so this writes that
 * file (not committed: infra/.gitignore) as two lines that extend `infra/env/<environment>.bicepparam`.
 * Each environment file refuses an azd environment of another name, so a stale selection fails the
 * provision instead of deploying one environment's values into another.
 */
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** azd environment names the Bicep accepts (also STAMPKEEPER_ENVIRONMENT's rule). */
const ENVIRONMENT_NAME = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

/** The environments that have a parameter file, sorted. */
export async function environments(infraDir: string): Promise<string[]> {
  const entries = await readdir(join(infraDir, 'env')).catch(() => [] as string[]);
  return entries
    .filter((f) => f.endsWith('.bicepparam'))
    .map((f) => f.slice(0, -'.bicepparam'.length))
    .sort();
}

/** The text of `infra/main.bicepparam` for an environment. */
export function entryFor(environment: string): string {
  return [
    `// Written by \`npm run infra:env -- ${environment}\` for azd, which reads infra/main.bicepparam.`,
    `// Not committed: the values are in infra/env/${environment}.bicepparam.`,
    "using './main.bicep'",
    `extends 'env/${environment}.bicepparam'`,
    '',
  ].join('\n');
}

/** Writes `<infraDir>/main.bicepparam` for `environment`; throws when it has no parameter file. */
export async function selectEnvironment(environment: string, infraDir: string): Promise<string> {
  if (!ENVIRONMENT_NAME.test(environment)) {
    throw new Error(
      `environment "${environment}": must be 1-32 lowercase letters, digits and dashes, not starting or ending with a dash`,
    );
  }
  const file = join(infraDir, 'env', `${environment}.bicepparam`);
  const exists = await stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!exists) {
    const known = await environments(infraDir);
    throw new Error(
      `no parameter file infra/env/${environment}.bicepparam (environments: ${known.join(', ') || 'none'}); ` +
        'create one from an existing environment (docs/deploy.md)',
    );
  }
  const entry = join(infraDir, 'main.bicepparam');
  await writeFile(entry, entryFor(environment));
  return entry;
}

if (require.main === module) {
  const [environment, ...rest] = process.argv.slice(2);
  if (!environment || rest.length > 0) {
    console.error('usage: npm run infra:env -- <environment>   (an infra/env/<environment>.bicepparam)');
    process.exit(2);
  }
  selectEnvironment(environment, resolve(__dirname, '..', 'infra'))
    .then((entry) => console.log(`${entry}: azd now provisions with infra/env/${environment}.bicepparam`))
    .catch((error: unknown) => {
      console.error(`infra:env: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    });
}
