/**
 * The .github files: valid against their published JSON Schemas (SchemaStore's github-workflow.json
 * and dependabot-2.0.json, kept verbatim in test/fixtures/schemas, see SOURCES.md), and doing what
 * docs/deploy.md says they do.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ROOT } from './bicep';

function validator(schema: string): ValidateFunction {
  // The schemas carry editor keywords (markdownDescription...) that strict mode would refuse.
  const ajv = new Ajv({ allErrors: true, strict: false });
  return ajv.compile(JSON.parse(readFileSync(join(ROOT, 'test/fixtures/schemas', schema), 'utf8')));
}

const workflowSchema = validator('github-workflow.json');
const dependabotSchema = validator('dependabot-2.0.json');
const yamlOf = (path: string) => parseYaml(readFileSync(join(ROOT, path), 'utf8'));
const workflows = readdirSync(join(ROOT, '.github/workflows')).filter((f) => /\.ya?ml$/.test(f));

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}

const runs = (steps: Step[]) => steps.map((s) => s.run ?? '').filter(Boolean);

describe('.github', () => {
  it.each(workflows)('workflow %s is valid against the GitHub workflow schema', (file) => {
    // Act
    const valid = workflowSchema(yamlOf(`.github/workflows/${file}`));

    // Assess
    expect(workflowSchema.errors ?? [], file).toEqual([]);
    expect(valid).toBe(true);
  });

  it('dependabot.yml is valid against the Dependabot schema', () => {
    // Act
    const valid = dependabotSchema(yamlOf('.github/dependabot.yml'));

    // Assess
    expect(dependabotSchema.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  it('refuses a workflow with a misspelled key (the schemas do check)', () => {
    // Prepare
    const ci = yamlOf('.github/workflows/ci.yml');
    ci.jobs.ci['run-on'] = ci.jobs.ci['runs-on'];
    delete ci.jobs.ci['runs-on'];

    // Act
    const valid = workflowSchema(ci);

    // Assess
    expect(valid).toBe(false);
  });

  it('CI installs, lints, type-checks, builds and lints the Bicep, tests and bundles, on Node 22', () => {
    // Prepare
    const ci = yamlOf('.github/workflows/ci.yml');
    const scripts = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts as Record<
      string,
      string
    >;
    const steps = ci.jobs.ci.steps as Step[];

    // Act
    const commands = runs(steps);
    const at = (command: string) => commands.findIndex((c) => c.startsWith(command));
    const setupNode = steps.find((s) => s.uses?.startsWith('actions/setup-node@'));

    // Assess
    expect(Object.keys(ci.on).sort()).toEqual(['pull_request', 'push', 'workflow_call']);
    const order = [
      'npm ci',
      'npm run lint',
      'npm run typecheck',
      'npm run infra:build',
      'npm test',
      'npm run build',
    ];
    expect(order.map(at).every((i) => i >= 0)).toBe(true);
    expect(order.map(at)).toEqual([...order.map(at)].sort((a, b) => a - b));
    for (const c of commands) {
      const script = /^npm run ([\w:]+)/.exec(c)?.[1];
      if (script) expect(scripts[script], `package.json script ${script}`).toBeDefined();
    }
    expect(setupNode?.with?.['node-version-file']).toBe('.nvmrc');
    expect(readFileSync(join(ROOT, '.nvmrc'), 'utf8').trim()).toBe('22');
  });

  it('deploys after CI to dev, then to prod (its environment is the approval gate), with OIDC and a smoke test', () => {
    // Prepare
    const deploy = yamlOf('.github/workflows/deploy.yml');
    const environment = yamlOf('.github/workflows/deploy-environment.yml');
    const job = environment.jobs.deploy;
    const steps = job.steps as Step[];
    const commands = runs(steps);
    const index = (pattern: RegExp) => commands.findIndex((c) => pattern.test(c));

    // Act
    const provisionFirst = steps.find(
      (s) => s.run?.startsWith('azd provision') && s.env?.STAMPKEEPER_WIRE_FUNCTIONS === 'false',
    );
    const provisionWired = steps.find(
      (s) => s.run?.startsWith('azd provision') && s.env?.STAMPKEEPER_WIRE_FUNCTIONS === 'true',
    );

    // Assess
    expect(deploy.jobs.ci.uses).toBe('./.github/workflows/ci.yml');
    expect(deploy.jobs.dev.needs).toBe('ci');
    expect(deploy.jobs.prod.needs).toBe('dev');
    expect([deploy.jobs.dev.with.environment, deploy.jobs.prod.with.environment]).toEqual(['dev', 'prod']);
    for (const name of ['dev', 'prod']) expect(deploy.jobs[name].permissions['id-token']).toBe('write');
    // The job runs in the GitHub environment of the same name: prod's required reviewers gate it.
    const input = ['$', '{{ inputs.environment }}'].join('');
    expect(job.environment.name).toBe(input);
    expect(job.env.AZURE_ENV_NAME).toBe(input);
    expect(commands.some((c) => /azd auth login .*--federated-credential-provider github/s.test(c))).toBe(
      true,
    );
    expect(commands.join('\n')).not.toMatch(/client-secret|AZURE_CREDENTIALS/);
    expect(index(/^npm run infra:env -- "\$AZURE_ENV_NAME"/)).toBeGreaterThan(-1);
    expect(provisionFirst && provisionWired).toBeTruthy();
    const order = [
      steps.indexOf(provisionFirst!),
      steps.findIndex((s) => s.run?.startsWith('azd deploy')),
      steps.indexOf(provisionWired!),
      steps.findIndex((s) => s.run?.includes('/api/health')),
    ];
    expect(order.every((i) => i >= 0)).toBe(true);
    expect(order).toEqual([...order].sort((a, b) => a - b));
  });

  it('has Dependabot update npm and GitHub Actions weekly, grouped', () => {
    // Act
    const updates = yamlOf('.github/dependabot.yml').updates as Array<{
      'package-ecosystem': string;
      schedule: { interval: string };
      groups?: Record<string, unknown>;
    }>;

    // Assess
    expect(updates.map((u) => u['package-ecosystem']).sort()).toEqual(['github-actions', 'npm']);
    for (const u of updates) {
      expect(u.schedule.interval).toBe('weekly');
      expect(Object.keys(u.groups ?? {}).length).toBeGreaterThan(0);
    }
  });
});
