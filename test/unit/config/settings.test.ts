import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkPolicyAgainstSettings, loadSettings, parsePolicy } from '../../../src/lib/config';
import { AZURITE_CONNECTION_STRING } from '../../../src/lib/config/settings';
import { ConfigurationError } from '../../../src/lib/core/errors';
import { clearRegisteredSecrets, redactText } from '../../../src/lib/core/redact';

const REAL_CONNECTION =
  'DefaultEndpointsProtocol=https;AccountName=stprod;AccountKey=c2VjcmV0LWtleS1ub3QtdG8tbGVhaw==;EndpointSuffix=core.windows.net';

function thrown(fn: () => unknown): ConfigurationError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigurationError) return error;
    throw error;
  }
  throw new Error('expected a ConfigurationError');
}

describe('loadSettings', () => {
  afterEach(() => clearRegisteredSecrets());

  it('applies the documented defaults and expands UseDevelopmentStorage to Azurite on 127.0.0.1', () => {
    // Prepare
    const env = { AzureWebJobsStorage: 'UseDevelopmentStorage=true' };
    // Act
    const settings = loadSettings(env, { appRoot: '/srv/app' });
    // Assess
    expect(settings).toMatchObject({
      storageConnectionString: AZURITE_CONNECTION_STRING,
      usesDevelopmentStorage: true,
      policyPath: resolve('/srv/app', 'policy/stampkeeper.policy.yaml'),
      environment: 'local',
      tablePrefix: 'stampkeeper',
      workQueueName: 'stampkeeper-work',
      dryRun: false,
      auditRetentionDays: 400,
      idempotencyTtlHours: 72,
    });
    expect(settings.eventGridTopicEndpoint).toBeUndefined();
    expect(settings.managedIdentityClientId).toBeUndefined();
    expect(settings.storageConnectionString).toContain(
      'QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1',
    );
  });

  it('reads every setting when given, resolving a relative policy path against the app root', () => {
    const settings = loadSettings(
      {
        AzureWebJobsStorage: REAL_CONNECTION,
        STAMPKEEPER_POLICY_PATH: 'ops/prod.policy.yaml',
        STAMPKEEPER_ENVIRONMENT: 'prod-weu',
        STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT: 'https://ops.westeurope-1.eventgrid.azure.net/api/events',
        STAMPKEEPER_TABLE_PREFIX: 'skprod',
        STAMPKEEPER_WORK_QUEUE: 'sk-work-prod',
        STAMPKEEPER_DRY_RUN: '1',
        STAMPKEEPER_AUDIT_RETENTION_DAYS: '30',
        STAMPKEEPER_IDEMPOTENCY_TTL_HOURS: '12',
        AZURE_CLIENT_ID: '8f1c2c8e-1a2b-4c3d-9e8f-0123456789ab',
      },
      { appRoot: '/srv/app' },
    );
    expect(settings).toMatchObject({
      storageConnectionString: REAL_CONNECTION,
      usesDevelopmentStorage: false,
      policyPath: resolve('/srv/app', 'ops/prod.policy.yaml'),
      environment: 'prod-weu',
      eventGridTopicEndpoint: 'https://ops.westeurope-1.eventgrid.azure.net/api/events',
      tablePrefix: 'skprod',
      workQueueName: 'sk-work-prod',
      dryRun: true,
      auditRetentionDays: 30,
      idempotencyTtlHours: 12,
      managedIdentityClientId: '8f1c2c8e-1a2b-4c3d-9e8f-0123456789ab',
    });
  });

  it('reports every wrong or missing setting at once, each with what is expected', () => {
    // Prepare
    const env = {
      STAMPKEEPER_ENVIRONMENT: 'Prod_WEU',
      STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT: 'http://ops.westeurope-1.eventgrid.azure.net/api/events',
      STAMPKEEPER_TABLE_PREFIX: '1stampkeeper',
      STAMPKEEPER_WORK_QUEUE: 'Work--Queue',
      STAMPKEEPER_DRY_RUN: 'yes',
      STAMPKEEPER_AUDIT_RETENTION_DAYS: '0',
      STAMPKEEPER_IDEMPOTENCY_TTL_HOURS: '1.5',
      AZURE_CLIENT_ID: 'not-a-guid',
    };
    // Act
    const error = thrown(() => loadSettings(env));
    // Assess
    expect(error.problems.map((p) => p.slice(0, p.indexOf(':')))).toEqual([
      'AzureWebJobsStorage',
      'STAMPKEEPER_ENVIRONMENT',
      'STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT',
      'STAMPKEEPER_TABLE_PREFIX',
      'STAMPKEEPER_WORK_QUEUE',
      'STAMPKEEPER_DRY_RUN',
      'STAMPKEEPER_AUDIT_RETENTION_DAYS',
      'STAMPKEEPER_IDEMPOTENCY_TTL_HOURS',
      'AZURE_CLIENT_ID',
    ]);
    expect(error.message).toContain('AzureWebJobsStorage: is required');
    expect(error.message).toContain('STAMPKEEPER_DRY_RUN: must be true, false, 1 or 0');
    expect(error.message).toContain('STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT: must be the https URL');
    expect(error.code).toBe('ConfigurationInvalid');
  });

  it("takes the app root from the host's AzureWebJobsScriptRoot when no root is given", () => {
    const settings = loadSettings({
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      AzureWebJobsScriptRoot: '/home/site/wwwroot',
    });
    expect(settings.policyPath).toBe(resolve('/home/site/wwwroot', 'policy/stampkeeper.policy.yaml'));
  });

  it('reads identity-based storage (no key held) from __accountName or the service URIs', () => {
    const byAccount = loadSettings({ AzureWebJobsStorage__accountName: 'stkeeperprod' }, { appRoot: '/app' });
    expect(byAccount.storageConnectionString).toBe('');
    expect(byAccount.storageIdentity).toEqual({
      tableServiceUrl: 'https://stkeeperprod.table.core.windows.net',
      queueServiceUrl: 'https://stkeeperprod.queue.core.windows.net',
      blobServiceUrl: 'https://stkeeperprod.blob.core.windows.net',
    });
    const byUris = loadSettings(
      {
        AzureWebJobsStorage__tableServiceUri: 'https://st.table.core.usgovcloudapi.net',
        AzureWebJobsStorage__queueServiceUri: 'https://st.queue.core.usgovcloudapi.net',
      },
      { appRoot: '/app' },
    );
    expect(byUris.storageIdentity?.queueServiceUrl).toBe('https://st.queue.core.usgovcloudapi.net');
  });

  it('reports wrong identity-based storage settings, naming them', () => {
    expect(() =>
      loadSettings({ AzureWebJobsStorage__accountName: 'Not_An_Account' }, { appRoot: '/app' }),
    ).toThrow(/AzureWebJobsStorage__accountName: must be a storage account name/);
    expect(() =>
      loadSettings(
        { AzureWebJobsStorage__tableServiceUri: 'https://st.table.core.windows.net' },
        { appRoot: '/app' },
      ),
    ).toThrow(/AzureWebJobsStorage__queueServiceUri: must be the https URL/);
  });

  it('treats blank values as unset', () => {
    const settings = loadSettings({
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      STAMPKEEPER_ENVIRONMENT: '  ',
      STAMPKEEPER_DRY_RUN: '',
    });
    expect(settings.environment).toBe('local');
    expect(settings.dryRun).toBe(false);
  });

  it('keeps table names within 63 characters and leaves room for the poison queue', () => {
    const error = thrown(() =>
      loadSettings({
        AzureWebJobsStorage: 'UseDevelopmentStorage=true',
        STAMPKEEPER_TABLE_PREFIX: `a${'b'.repeat(43)}`,
        STAMPKEEPER_WORK_QUEUE: `q${'x'.repeat(56)}`,
      }),
    );
    expect(error.problems).toHaveLength(2);
    expect(error.problems[0]).toMatch(/^STAMPKEEPER_TABLE_PREFIX: must be 3-43 letters/);
    expect(error.problems[1]).toMatch(/^STAMPKEEPER_WORK_QUEUE: must be a Storage queue name of 3-56/);
  });

  it('never echoes a secret value in its error message', () => {
    // Prepare: a connection string that is malformed (no AccountName) but carries a key.
    const leakyKey = 'TOP-SECRET-KEY-VALUE-42==';
    const env = {
      AzureWebJobsStorage: `DefaultEndpointsProtocol=https;AccountKey=${leakyKey}`,
      STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT: `ftp://user:${leakyKey}@example.com`,
    };
    // Act
    const error = thrown(() => loadSettings(env));
    // Assess
    expect(error.problems).toHaveLength(2);
    expect(error.message).not.toContain(leakyKey);
    expect(JSON.stringify({ ...error, message: error.message })).not.toContain(leakyKey);
  });

  it('does not print the storage connection string when the settings are serialised', () => {
    const settings = loadSettings({ AzureWebJobsStorage: REAL_CONNECTION });
    expect(JSON.stringify(settings)).not.toContain('c2VjcmV0LWtleS1ub3QtdG8tbGVhaw==');
    expect(redactText(`oops ${REAL_CONNECTION}`)).not.toContain('c2VjcmV0LWtleS1ub3QtdG8tbGVhaw==');
  });

  it('snapshots the environment: later changes do not alter validated settings', () => {
    const env: NodeJS.ProcessEnv = {
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      TEAMS_URL: 'https://a',
    };
    const settings = loadSettings(env);
    env.TEAMS_URL = 'https://b';
    expect(settings.settingValue('TEAMS_URL')).toBe('https://a');
    expect(settings.settingValue('MISSING')).toBeUndefined();
  });
});

describe('checkPolicyAgainstSettings', () => {
  afterEach(() => clearRegisteredSecrets());

  const policy = parsePolicy(
    `version: 1
notifications:
  defaults: [ops-events]
  channels:
    - { name: ops-events, type: eventGrid }
    - { name: ops-teams, type: teams, urlSetting: TEAMS_WEBHOOK_URL }
    - { name: pager, type: webhook, urlSetting: PAGER_WEBHOOK_URL, minSeverity: warning }
`,
    'inline',
  );

  it('accepts a policy whose channels all have their settings', () => {
    const settings = loadSettings({
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT: 'https://ops.westeurope-1.eventgrid.azure.net/api/events',
      TEAMS_WEBHOOK_URL: 'https://contoso.webhook.office.com/webhookb2/abc',
      PAGER_WEBHOOK_URL: 'http://127.0.0.1:9000/hook',
    });
    expect(checkPolicyAgainstSettings(policy, settings)).toEqual([]);
  });

  it('reports each channel whose setting is missing or malformed, without the value', () => {
    // Prepare
    const secretUrl = 'http://contoso.example/hook?sig=SUPER-SECRET-SIGNATURE';
    const settings = loadSettings({
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      PAGER_WEBHOOK_URL: secretUrl,
    });
    // Act
    const problems = checkPolicyAgainstSettings(policy, settings);
    // Assess
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(
      /^notifications\.channels\[0\] \(ops-events\): .*STAMPKEEPER_EVENTGRID_TOPIC_ENDPOINT/,
    );
    expect(problems[1]).toMatch(
      /^notifications\.channels\[1\]\.urlSetting \(ops-teams\): setting TEAMS_WEBHOOK_URL is not set/,
    );
    expect(problems[2]).toMatch(
      /^notifications\.channels\[2\]\.urlSetting \(pager\): setting PAGER_WEBHOOK_URL must be an https URL/,
    );
    expect(problems.join('\n')).not.toContain('SUPER-SECRET-SIGNATURE');
  });

  it('registers the channel webhook URLs for redaction', () => {
    // Prepare
    const url = 'https://contoso.webhook.office.com/webhookb2/very-secret-path';
    const settings = loadSettings({
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      TEAMS_WEBHOOK_URL: url,
    });
    expect(redactText(`POST ${url} failed`)).toContain(url);
    // Act
    checkPolicyAgainstSettings(policy, settings);
    // Assess
    expect(redactText(`POST ${url} failed`)).toBe('POST [REDACTED] failed');
  });
});
