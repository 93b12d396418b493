// A Key Vault (RBAC authorization) holding EXPORT_SEALING_KEY, which the app reads through a Key Vault reference as
// its identity; that identity may read this one secret (Key Vault Secrets User on the secret) and nothing else.

@description('Name of the vault (3 to 24 letters, digits and hyphens).')
param name string

@description('Region of the vault.')
param location string

@description('Tags for the vault.')
param tags object = {}

@description('Name of the secret holding the sealing key.')
param sealingKeySecretName string = 'export-sealing-key'

@secure()
@description('EXPORT_SEALING_KEY: 32 random bytes in base64 (44 characters).')
param sealingKey string

@description('Principal id of the app identity, which reads the secret.')
param appPrincipalId string

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  //checkov:skip=CKV_AZURE_109:No virtual network in this template: the app resolves its Key Vault reference over the vault's public endpoint, which admits Entra ID principals holding an RBAC role only.
  //checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109: public endpoint, RBAC authorization; add a private endpoint and virtual network integration to close it.
  //checkov:skip=CKV_AZURE_110:The vault holds only the sealing key, which protects in-flight exports' destination credentials; losing it fails those exports and nothing else. Purge protection would reserve the vault name after azd down; soft delete (7 days) still allows recovery.
  //checkov:skip=CKV_AZURE_42:Recoverable through soft delete (7 days); purge protection is left off for the reason given for CKV_AZURE_110.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource sealingKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  //checkov:skip=CKV_AZURE_41:An expired secret breaks the Key Vault reference and so every export start; the key is rotated by hand with a new version (docs/deploy.md).
  parent: vault
  name: sealingKeySecretName
  properties: {
    value: sealingKey
    contentType: 'application/octet-stream; base64 (32 bytes)'
    attributes: {
      enabled: true
    }
  }
}

resource readSealingKey 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(sealingKeySecret.id, appPrincipalId, keyVaultSecretsUser)
  scope: sealingKeySecret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output name string = vault.name
output sealingKeySecretUri string = sealingKeySecret.properties.secretUri
