// The Function App on the Flex Consumption plan (Linux, Python 3.11), running as the app's user-assigned identity and
// holding the identity for destinations, with every app setting the export service needs. Setting names are those
// shared/settings.py reads (README, "Settings").

@description('Name of the Function App.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Region of the plan and the app.')
param location string

@description('Tags for the plan and the app.')
param tags object = {}

@description('azd service name (azure.yaml) that `azd deploy` looks for in the app\'s tags.')
param serviceName string = 'api'

@description('Resource id of the app\'s user-assigned identity.')
param identityId string

@description('Client id of the app\'s user-assigned identity.')
param identityClientId string

@description('Resource id of the identity for useManagedIdentity destinations (no role of its own).')
param destinationIdentityId string

@description('Client id of the identity for useManagedIdentity destinations (EXPORT_IDENTITY_CLIENT_ID).')
param destinationIdentityClientId string

@description('Blob endpoint of the app\'s own storage account (AzureWebJobsStorage).')
param hostBlobEndpoint string

@description('Queue endpoint of the app\'s own storage account.')
param hostQueueEndpoint string

@description('Table endpoint of the app\'s own storage account.')
param hostTableEndpoint string

@description('URL of the container the plan deploys the app package to.')
param deploymentContainerUrl string

@description('Where the DICOM files are read from: blob (a container) or dicomweb (a DICOMweb server).')
@allowed([
  'blob'
  'dicomweb'
])
param dicomStoreType string

@description('For blob: the store account\'s blob endpoint.')
param dicomStoreBlobEndpoint string = ''

@description('For blob: the container holding <study>/<series>/<sop>.dcm.')
param dicomStoreContainerName string = 'dicom'

@description('For dicomweb: the DICOMweb service root.')
param dicomwebUrl string = ''

@description('For dicomweb: the token scope the app identity asks for.')
param dicomwebScope string = 'https://dicom.healthcareapis.azure.com/.default'

@description('Versionless URI of the Key Vault secret holding EXPORT_SEALING_KEY.')
param sealingKeySecretUri string

@description('Versionless URI of the Key Vault secret holding EXPORT_DEID_KEY; empty: no EXPORT_DEID_KEY setting (de-identified exports are refused).')
param deidKeySecretUri string = ''

@description('EXPORT_ALLOWED_DESTINATION_HOSTS: comma-separated hosts exports may write to.')
param allowedDestinationHosts string

@description('Application Insights connection string.')
param applicationInsightsConnectionString string

@description('Durable Task Scheduler endpoint; empty keeps the Azure Storage backend only.')
param durableTaskSchedulerEndpoint string = ''

@description('Most instances the app scales out to (40 to 1000).')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Memory of each instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

var hostSettings = [
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: hostBlobEndpoint
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: hostQueueEndpoint
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: hostTableEndpoint
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsightsConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
]

var exportSettings = [
  {
    name: 'EXPORT_SEALING_KEY'
    value: '@Microsoft.KeyVault(SecretUri=${sealingKeySecretUri})'
  }
  {
    name: 'EXPORT_ALLOWED_DESTINATION_HOSTS'
    value: allowedDestinationHosts
  }
  {
    name: 'EXPORT_IDENTITY_CLIENT_ID'
    value: destinationIdentityClientId
  }
]

// Only with a de-identification key: without the setting, de-identified exports answer 500 and plain ones work.
var deidSettings = [
  {
    name: 'EXPORT_DEID_KEY'
    value: '@Microsoft.KeyVault(SecretUri=${deidKeySecretUri})'
  }
]

var blobStoreSettings = [
  {
    name: 'DICOM_STORE_TYPE'
    value: 'blob'
  }
  {
    name: 'DICOM_STORE__blobServiceUri'
    value: dicomStoreBlobEndpoint
  }
  {
    name: 'DICOM_STORE__clientId'
    value: identityClientId
  }
  {
    name: 'DICOM_STORE_CONTAINER'
    value: dicomStoreContainerName
  }
]

var dicomwebStoreSettings = [
  {
    name: 'DICOM_STORE_TYPE'
    value: 'dicomweb'
  }
  {
    name: 'DICOMWEB_URL'
    value: dicomwebUrl
  }
  {
    name: 'DICOMWEB_AUTH'
    value: 'identity'
  }
  {
    name: 'DICOMWEB_CLIENT_ID'
    value: identityClientId
  }
  {
    name: 'DICOMWEB_SCOPE'
    value: dicomwebScope
  }
]

// Read by the Durable extension only when host.json names it (storageProvider.connectionStringName, docs/deploy.md).
var schedulerSettings = [
  {
    name: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
    value: 'Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity;ClientID=${identityClientId}'
  }
]

var storeSettings = (dicomStoreType == 'dicomweb') ? dicomwebStoreSettings : blobStoreSettings
var backendSettings = empty(durableTaskSchedulerEndpoint) ? [] : schedulerSettings
var deidKeySettings = empty(deidKeySecretUri) ? [] : deidSettings
var appSettings = concat(hostSettings, exportSettings, deidKeySettings, storeSettings, backendSettings)

var serviceTag = {
  'azd-service-name': serviceName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  //checkov:skip=CKV_AZURE_225:Flex Consumption zone redundancy exists in some regions only; where it does, set zoneRedundant on the plan (with zone-redundant storage). Without it a lost zone costs in-flight activities a retry.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  //checkov:skip=CKV_AZURE_222:The export API is meant to be called from outside: every endpoint needs a function key (AuthLevel.FUNCTION); add Entra ID authentication or access restrictions to narrow it further.
  //checkov:skip=CKV_AZURE_17:Callers authenticate with function keys (and optionally Entra ID); requiring client certificates would break every documented client.
  //checkov:skip=CKV_AZURE_212:Flex Consumption allocates instances on demand and scales to zero; always-ready instances would bill idle time, and a lost instance only costs a retried activity.
  //checkov:skip=CKV_AZURE_213:The API has no health route (unknown paths answer 404 by design); the Functions host and the platform replace failing instances.
  name: name
  location: location
  tags: union(tags, serviceTag)
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
      '${destinationIdentityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: appSettings
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// azd deploys to Flex Consumption with an Entra ID token: publishing with user names and passwords stays off.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
