// The app's user-assigned identity (every data-plane call of the app and the host) and the
// identity Event Grid uses to write dead letters. Two identities so that neither holds the other's roles.

param location string
param tags object
param appIdentityName string
param eventsIdentityName string

resource app 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: appIdentityName
  location: location
  tags: tags
}

resource events 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: eventsIdentityName
  location: location
  tags: tags
}

output appIdentityId string = app.id
output appClientId string = app.properties.clientId
output appPrincipalId string = app.properties.principalId
output eventsIdentityId string = events.id
output eventsPrincipalId string = events.properties.principalId
