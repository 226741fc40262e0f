// The custom roles the policy's rotations need (issue 8), each with exactly the actions its
// adapter calls (src/lib/azure/*.ts name them; infra/policy.targets.json lists them, derived by
// `npm run infra:params`). A role a built-in role covers exactly (Storage Account Key Operator
// Service Role) is not defined here. Each role may be assigned only in the resource groups (or the
// subscription, for Cosmos DB's operation status) its grants name.

targetScope = 'subscription'

import { rotationGrant, rotationRole } from 'types.bicep'

param environmentName string
@description('Makes the role names unique in the tenant (a custom role name is tenant-wide).')
param resourceToken string
param roles rotationRole[]
@description('Role definition GUID by role name (main.bicep derives them; the assignments use the same).')
param roleGuids object
param grants rotationGrant[]

var customRoles = filter(roles, r => r.?builtInRoleId == null)

resource definitions 'Microsoft.Authorization/roleDefinitions@2022-04-01' = [
  for role in customRoles: {
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
