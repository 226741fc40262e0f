import { inject } from 'vitest';
import { newId } from '../../src/lib/core/ids';

/** The Azurite connection string of this test run. */
export function storageConnectionString(): string {
  return inject('storageConnectionString');
}

/** A unique, Table/Queue-safe name prefix so that tests never see each other's state. */
export function uniquePrefix(label = 't'): string {
  return `${label}${newId().replace(/-/g, '').slice(0, 10)}`.toLowerCase();
}
