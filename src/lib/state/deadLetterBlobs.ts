/**
 * Large dead-letter bodies (and oversized property sets) in a blob container. `@azure/storage-blob`
 * loads on the first large body, not when the state stores are built (cold start).
 */
import type { ContainerClient } from '@azure/storage-blob';
import { type StorageAccess, storageCall } from './tables';

export interface BlobBodies {
  /** Writes (or overwrites: names are deterministic, a retry writes the same bytes) a blob. */
  put(name: string, bytes: Uint8Array, options?: { abortSignal?: AbortSignal }): Promise<void>;
  get(name: string, options?: { abortSignal?: AbortSignal }): Promise<Uint8Array>;
  /** Deletes every blob whose name starts with `prefix`; how many. */
  deleteUnder(prefix: string, options?: { abortSignal?: AbortSignal }): Promise<number>;
}

/** The container of the archive's large bodies: the table prefix, lowercase, plus `-deadletters`. */
export function deadLetterContainerName(tablePrefix: string): string {
  return `${tablePrefix.toLowerCase()}-deadletters`;
}

/**
 * Blob storage of the archive on the state's storage account. Needs Storage Blob Data Contributor
 * (or Owner, which the host's storage identity has) on the account or the container. The container
 * is created on the first write (once per process).
 */
export class StorageBlobBodies implements BlobBodies {
  private container: Promise<ContainerClient> | undefined;

  constructor(
    private readonly access: StorageAccess | string,
    private readonly containerName: string,
  ) {}

  private client(): Promise<ContainerClient> {
    const opening =
      this.container ??
      import('./deadLetterBlobClient.js')
        .then(({ openContainer }) => openContainer(this.access, this.containerName))
        .catch((error: unknown) => {
          this.container = undefined;
          throw error;
        });
    this.container = opening;
    return opening;
  }

  async put(name: string, bytes: Uint8Array, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    const container = await this.client();
    await storageCall(`write blob ${name}`, () =>
      container.getBlockBlobClient(name).uploadData(bytes, {
        abortSignal: options.abortSignal,
        // Large bodies (up to Service Bus premium's 100 MB) go up in blocks, a few at a time.
        blockSize: 4 * 1024 * 1024,
        concurrency: 4,
      }),
    );
  }

  async get(name: string, options: { abortSignal?: AbortSignal } = {}): Promise<Uint8Array> {
    const container = await this.client();
    const buffer = await storageCall(`read blob ${name}`, () =>
      container.getBlockBlobClient(name).downloadToBuffer(0, undefined, { abortSignal: options.abortSignal }),
    );
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  async deleteUnder(prefix: string, options: { abortSignal?: AbortSignal } = {}): Promise<number> {
    const container = await this.client();
    let deleted = 0;
    await storageCall(`delete blobs under ${prefix}`, async () => {
      for await (const blob of container.listBlobsFlat({ prefix, abortSignal: options.abortSignal })) {
        await container.deleteBlob(blob.name, {
          abortSignal: options.abortSignal,
          deleteSnapshots: 'include',
        });
        deleted += 1;
      }
    });
    return deleted;
  }
}
