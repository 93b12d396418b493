// The DICOM store: a storage account with one container holding <study>/<series>/<sop>.dcm. The app identity may
// read that container only (Storage Blob Data Reader on the container) and ask the account for user delegation keys
// (Storage Blob Delegator), so the SAS it mints for a server-side copy is scoped to one blob and signed by Entra ID.

@description('Name of the storage account (3 to 24 lowercase letters and digits).')
param name string

@description('Region of the account.')
param location string

@description('Tags for the account.')
param tags object = {}

@description('Redundancy of the account: the store is the source of every export, so geo-redundant by default.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_GRS'

@description('Container holding the DICOM files (DICOM_STORE_CONTAINER).')
param containerName string

@description('Principal id of the app identity.')
param appPrincipalId string

@description('Optional: principal id of a user or group that loads files into the store (Storage Blob Data Contributor on the container); empty grants nothing.')
param loaderPrincipalId string = ''

var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var storageBlobDelegator = 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  //checkov:skip=CKV_AZURE_206:False positive: skuName defaults to Standard_GRS (geo-redundant); checkov does not evaluate the parameter. LRS or ZRS are allowed by choice.
  //checkov:skip=CKV_AZURE_35:No virtual network in this template: the Flex Consumption app reaches the account over its public endpoint, and every request needs an Entra ID token (shared keys are disabled).
  //checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: the public endpoint stays on, for Entra ID principals only; add a virtual network and private endpoints to close it.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}

resource readStore 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(container.id, appPrincipalId, storageBlobDataReader)
  scope: container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource delegate 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, storageBlobDelegator)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDelegator)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource loadStore 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(loaderPrincipalId)) {
  name: guid(container.id, loaderPrincipalId, storageBlobDataContributor)
  scope: container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: loaderPrincipalId
  }
}

output name string = account.name
output blobEndpoint string = account.properties.primaryEndpoints.blob
output containerName string = container.name
