import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_GRID_CONCURRENCY } from '../../../src/local/host/eventGrid';
import { type RunningLocalHost, startLocalHost } from '../../../src/local/host/localHost';
import { captureLogger } from '../triggers/support';

// Event Grid's largest batch (5,000 events) on the local host: every event invoked once, and other
// requests served while the batch runs. Facts about order and counts, never about time.

const BATCH = 5_000;
/** Events from this index on wait until the health-style request has been answered. */
const GATED_FROM = 4_000;

let host: RunningLocalHost;
const invocations = new Map<string, number>();
const order: string[] = [];
let running = 0;
let maxRunning = 0;
let invokedWhenLoopTurned: number | undefined;
let invokedWhenPingAnswered: number | undefined;
let pingStatus: number | undefined;
let releaseGated: () => void = () => {};
const pingAnswered = new Promise<void>((resolve) => {
  releaseGated = resolve;
});

function invokedCount(): number {
  return [...invocations.values()].reduce((a, b) => a + b, 0);
}

function startPingOnce(): void {
  if (order.includes('ping sent')) return;
  order.push('ping sent');
  // A macrotask queued at the first invocation: it runs only once the host lets the loop turn.
  setImmediate(() => {
    invokedWhenLoopTurned = invokedCount();
  });
  void fetch(`${host.url}/api/ping`).then(async (res) => {
    pingStatus = res.status;
    await res.text();
    invokedWhenPingAnswered = invokedCount();
    order.push('ping answered');
    releaseGated();
  });
}

beforeAll(async () => {
  host = await startLocalHost({
    port: 0,
    startTimers: false,
    logger: captureLogger(),
    appEntry: async () => {
      const { app } = await import('@azure/functions');
      app.http('ping', { methods: ['GET'], authLevel: 'anonymous', handler: async () => ({ body: 'pong' }) });
      app.eventGrid('batch', {
        handler: async (event) => {
          running += 1;
          maxRunning = Math.max(maxRunning, running);
          try {
            startPingOnce();
            const index = Number(event.id.slice('ev-'.length));
            if (index >= GATED_FROM) await pingAnswered;
            invocations.set(event.id, (invocations.get(event.id) ?? 0) + 1);
          } finally {
            running -= 1;
          }
        },
      });
    },
  });
});

afterAll(async () => {
  await host?.stop();
});

describe('a 5,000-event Event Grid batch on the local host', () => {
  it('invokes every event once and answers another request while the batch runs', async () => {
    // Prepare: small Event Grid schema events, as a 5,000-event batch (at most 1 MB) has
    const events = Array.from({ length: BATCH }, (_, i) => ({
      id: `ev-${i}`,
      topic: '/subscriptions/0/resourceGroups/rg',
      subject: `s${i}`,
      eventType: 'Sample.Tick',
      eventTime: '2026-01-01T00:00:00Z',
      data: { n: i },
      dataVersion: '1',
    }));
    const body = JSON.stringify(events);

    // Act
    const res = await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=batch`, {
      method: 'POST',
      headers: { 'aeg-event-type': 'Notification', 'content-type': 'application/json' },
      body,
    });
    order.push('batch answered');

    // Assess
    expect(body.length).toBeLessThanOrEqual(1024 * 1024);
    expect(res.status).toBe(202);
    expect(invocations.size).toBe(BATCH);
    expect([...invocations.values()].every((count) => count === 1)).toBe(true);
    expect(pingStatus).toBe(200);
    expect(order).toEqual(['ping sent', 'ping answered', 'batch answered']);
    expect(invokedWhenPingAnswered).toBeLessThan(BATCH);
    expect(invokedWhenLoopTurned).toBeLessThan(BATCH);
    expect(maxRunning).toBeLessThanOrEqual(EVENT_GRID_CONCURRENCY);
  });
});
