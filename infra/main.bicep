// `azd up` entry point: one resource group holding the DICOM export service on Azure Functions Flex Consumption.
// What it creates, what it costs and how to operate it: docs/deploy.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; it names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region of every resource; it must offer the Flex Consumption plan (az functionapp list-flexconsumption-locations).')
param location string

@secure()
@minLength(44)
@maxLength(44)
@description('EXPORT_SEALING_KEY: 32 random bytes in base64, for example the output of python3 -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())". Stored in Key Vault only.')
param exportSealingKey string

@secure()
@description('EXPORT_DEID_KEY, optional: the secret (at least 16 bytes; 32 random bytes in base64 recommended, made like exportSealingKey) keying the pseudonyms of de-identified exports. Keep it for the deployment\'s life: a new value changes every pseudonym. Empty: no secret and no setting; de-identified exports are refused. Stored in Key Vault only.')
param exportDeidKey string = ''

@description('Where the DICOM files are read from: blob (a container in a storage account this template creates) or dicomweb (a DICOMweb server, such as Azure\'s DICOM service).')
@allowed([
  'blob'
  'dicomweb'
])
param dicomStoreType string = 'blob'

@description('For blob: the container holding <study>/<series>/<sop>.dcm.')
param dicomStoreContainerName string = 'dicom'

@description('For blob: the redundancy of the store account.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param dicomStoreSkuName string = 'Standard_GRS'

@description('For blob, optional: principal id of a user or group that loads files into the store (gets Storage Blob Data Contributor on the container).')
param dicomStoreLoaderPrincipalId string = ''

@description('For dicomweb: the DICOMweb service root, e.g. https://<workspace>-<service>.dicom.azurehealthcareapis.com/v2. Give the app identity a reader role there (for Azure\'s DICOM service: DICOM Data Reader).')
param dicomwebUrl string = ''

@description('For dicomweb: the token scope the app identity asks for.')
param dicomwebScope string = 'https://dicom.healthcareapis.azure.com/.default'

@description('EXPORT_ALLOWED_DESTINATION_HOSTS: comma-separated hosts exports may write to (exact names, IP addresses or *.suffix, each optionally with :port).')
param allowedDestinationHosts string = '*.blob.${environment().suffixes.storage}'

@description('Create a Durable Task Scheduler (scheduler, task hub, role) and set DURABLE_TASK_SCHEDULER_CONNECTION_STRING. The app switches to it only when host.json\'s storageProvider names it (docs/deploy.md).')
param useDurableTaskScheduler bool = false

@description('Durable Task Scheduler billing model.')
@allowed([
  'Consumption'
  'Dedicated'
])
param durableTaskSchedulerSku string = 'Consumption'

@description('Most instances the Function App scales out to (40 to 1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory of each Function App instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

var tags = {
  'azd-env-name': environmentName
}
var token = toLower(uniqueString(subscription().id, environmentName, location))
var taskHubName = 'DicomExport' // host.json: extensions.durableTask.hubName

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-dicom-export-${token}'
    location: location
    tags: tags
  }
}

// useManagedIdentity destinations are written as this identity, never as the app's own: it holds no role here.
module destinationIdentity 'modules/identity.bicep' = {
  name: 'destination-identity'
  scope: rg
  params: {
    name: 'id-dicom-export-destinations-${token}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${token}'
    applicationInsightsName: 'appi-${token}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module hostStorage 'modules/host-storage.bicep' = {
  name: 'host-storage'
  scope: rg
  params: {
    name: 'stfunc${token}'
    location: location
    tags: tags
    deploymentContainerName: 'app-package'
    appPrincipalId: identity.outputs.principalId
  }
}

module dicomStore 'modules/dicom-store.bicep' = if (dicomStoreType == 'blob') {
  name: 'dicom-store'
  scope: rg
  params: {
    name: 'stdicom${token}'
    location: location
    tags: tags
    skuName: dicomStoreSkuName
    containerName: dicomStoreContainerName
    appPrincipalId: identity.outputs.principalId
    loaderPrincipalId: dicomStoreLoaderPrincipalId
  }
}

module keyVault 'modules/key-vault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    name: 'kv-${token}'
    location: location
    tags: tags
    sealingKey: exportSealingKey
    deidKey: exportDeidKey
    appPrincipalId: identity.outputs.principalId
  }
}

module scheduler 'modules/durable-task-scheduler.bicep' = if (useDurableTaskScheduler) {
  name: 'durable-task-scheduler'
  scope: rg
  params: {
    name: 'dts-${token}'
    location: location
    tags: tags
    skuName: durableTaskSchedulerSku
    taskHubName: taskHubName
    appPrincipalId: identity.outputs.principalId
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: 'func-dicom-export-${token}'
    planName: 'plan-${token}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    destinationIdentityId: destinationIdentity.outputs.id
    destinationIdentityClientId: destinationIdentity.outputs.clientId
    hostBlobEndpoint: hostStorage.outputs.blobEndpoint
    hostQueueEndpoint: hostStorage.outputs.queueEndpoint
    hostTableEndpoint: hostStorage.outputs.tableEndpoint
    deploymentContainerUrl: hostStorage.outputs.deploymentContainerUrl
    dicomStoreType: dicomStoreType
    dicomStoreBlobEndpoint: (dicomStoreType == 'blob') ? dicomStore.outputs.blobEndpoint : ''
    dicomStoreContainerName: dicomStoreContainerName
    dicomwebUrl: dicomwebUrl
    dicomwebScope: dicomwebScope
    sealingKeySecretUri: keyVault.outputs.sealingKeySecretUri
    deidKeySecretUri: keyVault.outputs.deidKeySecretUri
    allowedDestinationHosts: allowedDestinationHosts
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    durableTaskSchedulerEndpoint: useDurableTaskScheduler ? scheduler.outputs.endpoint : ''
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
  }
  dependsOn: [
    dicomStore
    scheduler
  ]
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_API_URI string = 'https://${functionApp.outputs.defaultHostName}'
output AZURE_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
// Grant this identity Storage Blob Data Contributor on each useManagedIdentity destination container (docs/deploy.md).
output AZURE_DESTINATION_IDENTITY_CLIENT_ID string = destinationIdentity.outputs.clientId
output AZURE_DESTINATION_IDENTITY_PRINCIPAL_ID string = destinationIdentity.outputs.principalId
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output EXPORT_SEALING_KEY_SECRET_URI string = keyVault.outputs.sealingKeySecretUri
// Empty when no de-identification key was given.
output EXPORT_DEID_KEY_SECRET_URI string = keyVault.outputs.deidKeySecretUri
// Named like the app settings, so that `azd env get-values` gives tools.store_loader the store (with your az login).
output DICOM_STORE__blobServiceUri string = (dicomStoreType == 'blob') ? dicomStore.outputs.blobEndpoint : ''
output DICOM_STORE_CONTAINER string = dicomStoreContainerName
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
