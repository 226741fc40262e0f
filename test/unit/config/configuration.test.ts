import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfiguration, loadConfigurationSync } from '../../../src/lib/config';
import { ConfigurationError } from '../../../src/lib/core/errors';

const REPO_ROOT = join(__dirname, '..', '..', '..');

describe('loadConfiguration', () => {
  it('loads the bundled policy from the app root and checks it against the settings', async () => {
    // Prepare
    const env = {
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT: 'https://sandbox.westeurope-1.eventgrid.azure.net/api/events',
      TEAMS_WEBHOOK_URL: 'https://contoso.webhook.office.com/webhookb2/x',
      LEGACY_STAMP_ROLL_WEBHOOK_URL: 'https://deploy.contoso.example/hooks/legacy-stamp',
      ORDERS_WORKER_HEALTH_URL: 'https://orders-worker.stamp-weu.contoso.example/healthz',
      STAMPKEEPER_JOBS_HEALTH_URL: 'https://jobs.stamp-weu.contoso.example/healthz',
      REPORTS_BATCH_HEALTH_URL: 'https://reports-batch.stamp-weu.contoso.example/healthz',
      STAMPKEEPER_SERVICEBUS__fullyQualifiedNamespace: 'stampkeeper-sandbox-sb.servicebus.windows.net',
    };
    // Act
    const { settings, policy } = await loadConfiguration(env, { appRoot: REPO_ROOT });
    // Assess
    expect(settings.policyPath).toBe(join(REPO_ROOT, 'policy', 'stampkeeper.policy.yaml'));
    expect(policy.secrets.map((s) => s.name)).toEqual(['cosmos-primary-key', 'storage-account-key']);
    expect(loadConfigurationSync(env, { appRoot: REPO_ROOT }).policy).toEqual(policy);
  });

  it('lists settings, policy and cross-check problems in one error', async () => {
    // Prepare: a bad setting, a policy with a bad schedule, and an unset webhook setting.
    const dir = await mkdtemp(join(tmpdir(), 'sk-config-'));
    await writeFile(
      join(dir, 'p.yaml'),
      'version: 1\nschedules: { secretSweep: "0 0 25 * * *" }\nnotifications:\n  channels: [{ name: t, type: teams, urlSetting: T_URL }]\n',
    );
    const env = { STAMPKEEPER_POLICY_PATH: join(dir, 'p.yaml'), STAMPKEEPER_DRY_RUN: 'maybe' };
    // Act
    const error = await loadConfiguration(env).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(ConfigurationError);
    const problems = (error as ConfigurationError).problems;
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^setting AzureWebJobsStorage: is required/);
    expect(problems[1]).toMatch(/^setting STAMPKEEPER_DRY_RUN:/);
    expect(problems[2]).toMatch(
      /p\.yaml: schedules\.secretSweep: invalid NCRONTAB: hour field "25" is out of range 0-23/,
    );
  });

  it('reports the cross-check once settings and policy are each valid', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sk-config-'));
    await writeFile(
      join(dir, 'p.yaml'),
      'version: 1\nnotifications:\n  channels: [{ name: e, type: eventGrid }]\n',
    );
    const error = await loadConfiguration({
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      STAMPKEEPER_POLICY_PATH: join(dir, 'p.yaml'),
    }).catch((e: unknown) => e);
    expect((error as ConfigurationError).problems).toEqual([
      expect.stringMatching(
        /notifications\.channels\[0\] \(e\): eventGrid channel needs setting STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT/,
      ),
    ]);
  });

  it('names a missing policy file', async () => {
    const error = await loadConfiguration({
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      STAMPKEEPER_POLICY_PATH: '/nonexistent/policy.yaml',
    }).catch((e: unknown) => e);
    expect((error as ConfigurationError).problems).toEqual([
      expect.stringMatching(/^policy \/nonexistent\/policy\.yaml: \(file\): file not found/),
    ]);
  });
});
