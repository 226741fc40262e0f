import type { Clock } from '../../../src/lib/ports/clock';
import { createStateStores, type StateStores } from '../../../src/lib/state';
import { storageConnectionString, uniquePrefix } from '../../support/storage';

/** A clock the test moves by hand. */
export class TestClock implements Clock {
  constructor(private current = new Date('2026-11-27T10:00:00.000Z')) {}
  now(): Date {
    return new Date(this.current.getTime());
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
  set(time: Date): void {
    this.current = new Date(time.getTime());
  }
}

/** State stores on fresh tables and queues of the test run's Azurite. */
export async function freshStores(clock: Clock): Promise<StateStores> {
  const prefix = uniquePrefix('s');
  const stores = createStateStores({
    connectionString: storageConnectionString(),
    tablePrefix: prefix,
    workQueueName: `${prefix}-work`,
    clock,
  });
  await stores.ensure();
  return stores;
}
