// Optional Durable Task Scheduler backend: a scheduler, the task hub named in host.json (durableTask.hubName) and the
// app identity's data-plane role on it. The app uses it once host.json's storageProvider names it (see docs/deploy.md).

@description('Name of the scheduler.')
param name string

@description('Region of the scheduler.')
param location string

@description('Tags for the scheduler.')
param tags object = {}

@description('Billing model: Consumption (per orchestration and activity) or Dedicated (capacity units).')
@allowed([
  'Consumption'
  'Dedicated'
])
param skuName string = 'Consumption'

@description('Task hub name: must equal extensions.durableTask.hubName in host.json.')
param taskHubName string

@description('IP ranges allowed to reach the scheduler; the default admits any address (access still needs an Entra ID token).')
param ipAllowlist array = [
  '0.0.0.0/0'
]

@description('Principal id of the app identity.')
param appPrincipalId string

var durableTaskDataContributor = '0ad04412-c4d5-4796-b79c-f76d14c8d402'

resource scheduler 'Microsoft.DurableTask/schedulers@2025-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    ipAllowlist: ipAllowlist
    sku: (skuName == 'Dedicated') ? {
      name: skuName
      capacity: 1
    } : {
      name: skuName
    }
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2025-11-01' = {
  parent: scheduler
  name: taskHubName
}

resource runOrchestrations 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(taskHub.id, appPrincipalId, durableTaskDataContributor)
  scope: taskHub
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
