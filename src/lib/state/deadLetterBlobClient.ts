/** The blob SDK side of `StorageBlobBodies`, loaded on the first large body (cold start). */
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { ConfigurationError } from '../core/errors';
import { type StorageAccess, storageCall } from './tables';

/** The archive's container on the state's storage account, created if missing. */
export async function openContainer(
  access: StorageAccess | string,
  containerName: string,
): Promise<ContainerClient> {
  const a = typeof access === 'string' ? { connectionString: access } : access;
  let service: BlobServiceClient;
  if ('connectionString' in a) {
    service = BlobServiceClient.fromConnectionString(a.connectionString);
  } else {
    if (!a.blobServiceUrl)
      throw new ConfigurationError(
        'the dead-letter archive needs the blob service URL (AzureWebJobsStorage__blobServiceUri or __accountName)',
      );
    service = new BlobServiceClient(a.blobServiceUrl, a.credential);
  }
  const container = service.getContainerClient(containerName);
  await storageCall(`create container ${containerName}`, () => container.createIfNotExists());
  return container;
}
