// The custom roles the policy's alert playbooks need (issue 10), each with exactly the actions its
// capacity adapter calls (src/lib/azure/cosmosThroughput.ts, serviceBusCapacity.ts,
// containerAppScale.ts name them; infra/policy.targets.json lists them, derived by
// `npm run infra:params`). No built-in role is that narrow. Each role may be assigned only in the
// resource groups (or the subscription, for Cosmos DB's operation status) its grants name.

targetScope = 'subscription'

import { remediationGrant, rotationRole } from 'types.bicep'

param environmentName string
@description('Makes the role names unique in the tenant (a custom role name is tenant-wide).')
param resourceToken string
param roles rotationRole[]
@description('Role definition GUID by role name (main.bicep derives them; the assignments use the same).')
param roleGuids object
param grants remediationGrant[]

resource definitions 'Microsoft.Authorization/roleDefinitions@2022-04-01' = [
  for role in roles: {
    name: roleGuids[role.name]
    properties: {
      roleName: 'stampkeeper ${environmentName} ${role.name} ${resourceToken}'
      description: 'stampkeeper app (${environmentName}): ${role.description}'
      type: 'CustomRole'
      permissions: [
        {
          actions: role.actions
          notActions: []
          dataActions: []
          notDataActions: []
        }
      ]
      assignableScopes: union(
        map(
          filter(grants, g => g.role == role.name),
          g =>
            g.resourceType == 'subscription'
              ? '/subscriptions/${g.subscriptionId}'
              : '/subscriptions/${g.subscriptionId}/resourceGroups/${g.resourceGroup}'
        ),
        []
      )
    }
  }
]
