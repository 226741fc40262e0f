/** A monitored estate for the Azure Monitor tests: a Service Bus namespace, a Cosmos DB account, a workspace. */
import type { HttpClient, PipelineRequest } from '@azure/core-rest-pipeline';
import { createSandbox, type Sandbox, type Scenario } from '../../../../src/local/sandbox';

export const START = '2026-01-01T00:00:00.000Z';
export const SUB = '00000000-0000-0000-0000-000000000000';
export const SB = `/subscriptions/${SUB}/resourceGroups/rg-stamp/providers/Microsoft.ServiceBus/namespaces/sb-stamp`;
export const SB_OTHER = `/subscriptions/${SUB}/resourceGroups/rg-stamp/providers/Microsoft.ServiceBus/namespaces/sb-other`;
export const COSMOS = `/subscriptions/${SUB}/resourceGroups/rg-stamp/providers/Microsoft.DocumentDB/databaseAccounts/cosmos-stamp`;
export const APPI = `/subscriptions/${SUB}/resourceGroups/rg-stamp/providers/Microsoft.Insights/components/appi-stamp`;
export const WORKSPACE = '3f2a4e0c-5b7d-4a1e-9c8b-2d6f0e1a7b94';
export const REGION = 'westeurope';

/** Minutes relative to START. */
export function at(minutes: number): Date {
  return new Date(Date.parse(START) + minutes * 60_000);
}

export const FAILURE_RATE_QUERY = `// stampkeeper:query=stamp-failure-rate
requests
| where cloud_RoleName == 'stamp-eu-2'
| summarize failureRate = 100.0 * countif(success == false) / count(), p95 = percentile(duration, 95)`;

export function monitorScenario(extra: Partial<NonNullable<Scenario['monitor']>> = {}): Scenario {
  return {
    clock: { start: START },
    monitor: {
      metrics: {
        // These tests read the latest minutes: no ingestion delay (the default is Azure's few minutes).
        ingestionDelayMinutes: 0,
        definitions: {
          'Microsoft.ServiceBus/namespaces': [
            {
              name: 'DeadletteredMessages',
              displayName: 'Count of dead-lettered messages in a Queue/Topic.',
              unit: 'Count',
              aggregation: 'Average',
              dimensions: ['EntityName'],
            },
            {
              name: 'ActiveMessages',
              displayName: 'Count of active messages in a Queue/Topic.',
              unit: 'Count',
              aggregation: 'Average',
              dimensions: ['EntityName'],
            },
            {
              name: 'IncomingMessages',
              displayName: 'Incoming Messages',
              unit: 'Count',
              aggregation: 'Total',
              dimensions: ['EntityName'],
              fillGapWithZero: true,
            },
          ],
          'Microsoft.DocumentDB/databaseAccounts': [
            {
              name: 'TotalRequests',
              displayName: 'Total Requests',
              unit: 'Count',
              aggregation: 'Count',
              dimensions: ['DatabaseName', 'CollectionName', 'StatusCode'],
            },
            {
              name: 'NormalizedRUConsumption',
              displayName: 'Normalized RU Consumption',
              unit: 'Percent',
              aggregation: 'Maximum',
              dimensions: ['CollectionName', 'DatabaseName'],
            },
          ],
        },
        resources: [
          {
            id: SB,
            region: REGION,
            series: [
              // Zero dead letters: data, not missing data.
              { metric: 'DeadletteredMessages', dimensions: { EntityName: 'orders' }, value: 0 },
              // Growing: 2 from -60m, 10 from -30m.
              {
                metric: 'DeadletteredMessages',
                dimensions: { EntityName: 'payments' },
                steps: [
                  { at: '-60m', value: 2 },
                  { at: '-30m', value: 10 },
                ],
              },
              // 5, with no data from -45m to -15m.
              {
                metric: 'DeadletteredMessages',
                dimensions: { EntityName: 'audit' },
                value: 5,
                gaps: [{ from: '-45m', to: '-15m' }],
              },
              // A counter the provider fills with zero where nothing was emitted: 7 a minute from -20m.
              {
                metric: 'IncomingMessages',
                dimensions: { EntityName: 'payments' },
                steps: [{ at: '-20m', value: 7 }],
              },
            ],
          },
          { id: SB_OTHER, region: 'northeurope' },
          {
            id: COSMOS,
            region: REGION,
            series: [
              {
                metric: 'TotalRequests',
                dimensions: { DatabaseName: 'db1', CollectionName: 'orders', StatusCode: '200' },
                value: 1000,
              },
              {
                metric: 'TotalRequests',
                dimensions: { DatabaseName: 'db1', CollectionName: 'orders', StatusCode: '429' },
                steps: [
                  { at: '-60m', value: 0 },
                  { at: '-10m', value: 50 },
                ],
              },
              {
                metric: 'NormalizedRUConsumption',
                dimensions: { CollectionName: 'orders', DatabaseName: 'db1' },
                ramp: [
                  { at: '-60m', value: 0 },
                  { at: '+0m', value: 100 },
                ],
              },
            ],
          },
        ],
        ...extra.metrics,
      },
      logAnalytics: {
        workspaces: [
          {
            id: WORKSPACE,
            name: 'law-stamp',
            resources: [APPI],
            queries: [
              {
                name: 'stamp-failure-rate',
                match: { tag: 'stamp-failure-rate' },
                results: {
                  pass: {
                    tables: [
                      {
                        columns: [
                          { name: 'failureRate', type: 'real' },
                          { name: 'p95', type: 'real' },
                        ],
                        rows: [[0.4, 640]],
                      },
                    ],
                  },
                  fail: {
                    tables: [
                      {
                        columns: [
                          { name: 'failureRate', type: 'real' },
                          { name: 'p95', type: 'real' },
                        ],
                        rows: [[3.5, 1900]],
                      },
                    ],
                  },
                  missing: {
                    tables: [
                      {
                        columns: [
                          { name: 'failureRate', type: 'real' },
                          { name: 'p95', type: 'real' },
                        ],
                        rows: [],
                      },
                    ],
                  },
                  partial: {
                    tables: [
                      {
                        columns: [
                          { name: 'failureRate', type: 'real' },
                          { name: 'p95', type: 'real' },
                        ],
                        rows: [[0.1, 300]],
                      },
                    ],
                    partialError: { message: 'Query execution has exceeded the allowed limits' },
                  },
                },
              },
              {
                name: 'exceptions-by-type',
                match: {
                  text: 'exceptions | where timestamp > ago(15m) | summarize count() by type',
                },
                results: {
                  some: {
                    tables: [
                      {
                        columns: [
                          { name: 'type', type: 'string' },
                          { name: 'count_', type: 'long' },
                          { name: 'handled', type: 'bool' },
                          { name: 'last', type: 'datetime' },
                          { name: 'details', type: 'dynamic' },
                        ],
                        rows: [
                          ['System.TimeoutException', 12, true, '-5m', { region: 'weu', ids: [1, 2] }],
                          ['System.IO.IOException', 3, false, '-40m', null],
                        ],
                      },
                    ],
                    windowColumn: 'last',
                  },
                },
              },
            ],
          },
        ],
        ...extra.logAnalytics,
      },
    },
  };
}

export function monitoredSandbox(extra: Partial<NonNullable<Scenario['monitor']>> = {}): Sandbox {
  return createSandbox({ scenario: monitorScenario(extra) });
}

/** Wraps the sandbox's HttpClient to keep what the SDK sends. */
export function recording(inner: HttpClient): { client: HttpClient; sent: PipelineRequest[] } {
  const sent: PipelineRequest[] = [];
  return {
    sent,
    client: {
      sendRequest(request) {
        sent.push(request);
        return inner.sendRequest(request);
      },
    },
  };
}
