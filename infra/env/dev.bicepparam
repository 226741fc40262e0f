// The dev environment. For azd, `npm run infra:env -- dev` makes infra/main.bicepparam extend
// this file (docs/deploy.md); `az deployment sub create --parameters infra/env/dev.bicepparam`
// uses it directly.
using '../main.bicep'

// Refuses an azd environment of another name: this file's values are dev's.
var azdEnvironment = readEnvironmentVariable('AZURE_ENV_NAME', 'dev')
param environmentName = azdEnvironment == 'dev'
  ? 'dev'
  : fail('infra/env/dev.bicepparam is selected but the azd environment is ${azdEnvironment}: run npm run infra:env -- ${azdEnvironment}')
param location = readEnvironmentVariable('AZURE_LOCATION', 'westeurope')

// False for the very first provision only (before the code exists): docs/deploy.md.
param wireFunctions = bool(readEnvironmentVariable('STAMPKEEPER_WIRE_FUNCTIONS', 'true'))

// The environment's Entra app registration (docs/deploy.md, "Callers and app roles"): built-in
// authentication accepts tokens for it, the action group's secure webhook names it. Set once per
// environment (azd env set, or the GitHub environment's variables); empty fails the deployment.
param authClientId = readEnvironmentVariable('STAMPKEEPER_AUTH_CLIENT_ID', '')
param authAppObjectId = readEnvironmentVariable('STAMPKEEPER_AUTH_OBJECT_ID', '')

// What the policy targets. Regenerate with `npm run infra:params` after changing the policy.
param policyTargets = loadJsonContent('../policy.targets.json')

// Where the policy's vaults live in this environment.
param vaultPlacements = {
  'stampkeeper-sandbox': { resourceGroup: 'rg-workload-dev' }
}

// Where the channel URL settings live (webhook URLs are credentials: Key Vault, never here).
param channelSettingSources = {
  TEAMS_WEBHOOK_URL: { vaultName: 'kv-stampkeeper-cfg-dev', secretName: 'teams-webhook-url', resourceGroup: 'rg-workload-dev' }
  LEGACY_STAMP_ROLL_WEBHOOK_URL: { vaultName: 'kv-stampkeeper-cfg-dev', secretName: 'legacy-stamp-roll-webhook-url', resourceGroup: 'rg-workload-dev' }
  ORDERS_WORKER_HEALTH_URL: { vaultName: 'kv-stampkeeper-cfg-dev', secretName: 'orders-worker-health-url', resourceGroup: 'rg-workload-dev' }
  STAMPKEEPER_JOBS_HEALTH_URL: { vaultName: 'kv-stampkeeper-cfg-dev', secretName: 'stampkeeper-jobs-health-url', resourceGroup: 'rg-workload-dev' }
  REPORTS_BATCH_HEALTH_URL: { vaultName: 'kv-stampkeeper-cfg-dev', secretName: 'reports-batch-health-url', resourceGroup: 'rg-workload-dev' }
}

// The workload's data and messaging resources to alert on (the policy does not name them yet).
param cosmosDbAccountIds = []
param serviceBusNamespaceIds = []

param dryRun = true
param storageSku = 'Standard_LRS'
param maximumInstanceCount = 40
