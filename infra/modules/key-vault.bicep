// A Key Vault (RBAC authorization) holding EXPORT_SEALING_KEY and, when given, EXPORT_DEID_KEY, which the app reads
// through Key Vault references as its identity; that identity may read these secrets (Key Vault Secrets User on each
// secret) and nothing else.

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

@description('Name of the secret holding the de-identification key.')
param deidKeySecretName string = 'export-deid-key'

@secure()
@description('EXPORT_DEID_KEY, optional: the secret (at least 16 bytes) keying de-identified exports\' pseudonyms. Empty: no secret, and de-identified exports are refused.')
param deidKey string = ''

@description('Principal id of the app identity, which reads the secret.')
param appPrincipalId string

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
// Whether a de-identification key was given (a bool, so that the output below does not touch the secure value).
var hasDeidKey = !empty(deidKey)

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  //checkov:skip=CKV_AZURE_109:No virtual network in this template: the app resolves its Key Vault reference over the vault's public endpoint, which admits Entra ID principals holding an RBAC role only.
  //checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109: public endpoint, RBAC authorization; add a private endpoint and virtual network integration to close it.
  //checkov:skip=CKV_AZURE_110:The sealing key protects in-flight exports only; the optional de-identification key must also be kept outside the vault by its operator (docs/deploy.md). Purge protection would reserve the vault name after azd down; soft delete (7 days) still allows recovery.
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

// Created only when a de-identification key is given: without it the app has no EXPORT_DEID_KEY setting.
resource deidKeySecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (hasDeidKey) {
  //checkov:skip=CKV_AZURE_41:An expired secret breaks the Key Vault reference and so every de-identified export; the key must stay the same for the deployment's life (docs/deploy.md).
  //checkov:skip=CKV_AZURE_114:contentType is set below; checkov 3.3.30 does not look inside a conditional resource's body (if (...)), so tests/test_infra.py asserts it instead.
  parent: vault
  name: deidKeySecretName
  properties: {
    value: deidKey
    contentType: 'text/plain; HMAC key, at least 16 bytes (32 random bytes in base64 recommended)'
    attributes: {
      enabled: true
    }
  }
}

resource readDeidKey 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (hasDeidKey) {
  name: guid(deidKeySecret.id, appPrincipalId, keyVaultSecretsUser)
  scope: deidKeySecret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output name string = vault.name
output sealingKeySecretUri string = sealingKeySecret.properties.secretUri
// Versionless, like sealingKeySecretUri; empty when no de-identification key was given.
output deidKeySecretUri string = hasDeidKey ? deidKeySecret.properties.secretUri : ''
