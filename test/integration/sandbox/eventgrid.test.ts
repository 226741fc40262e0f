import { AzureKeyCredential } from '@azure/core-auth';
import { createHttpHeaders, createPipelineRequest } from '@azure/core-rest-pipeline';
import { EventGridPublisherClient } from '@azure/eventgrid';
import { describe, expect, it } from 'vitest';
import { createSandbox } from '../../../src/local/sandbox';

const TOPIC = 'https://notify-topic.westeurope-1.eventgrid.azure.net/api/events';

describe('sandbox Event Grid publish sink, through the real EventGridPublisherClient', () => {
  it('keeps CloudEvents published with an access key, with their schema and topic host', async () => {
    // Prepare
    const sandbox = createSandbox({ scenario: { clock: { start: '2026-01-01T00:00:00Z' } } });
    const client = new EventGridPublisherClient(TOPIC, 'CloudEvent', new AzureKeyCredential('sandbox-key'), {
      httpClient: sandbox.httpClient,
    });

    // Act
    await client.send([
      {
        type: 'Stampkeeper.Secret.NearExpiry',
        source: '/stampkeeper',
        subject: 'cosmos-primary-key',
        data: { days: 30 },
      },
    ]);

    // Assess
    const published = sandbox.eventGrid.published();
    expect(published).toHaveLength(1);
    expect(published[0]).toMatchObject({
      topicHost: 'notify-topic.westeurope-1.eventgrid.azure.net',
      schema: 'CloudEventSchemaV1_0',
      auth: 'key',
      time: '2026-01-01T00:00:00.000Z',
      event: {
        type: 'Stampkeeper.Secret.NearExpiry',
        source: '/stampkeeper',
        subject: 'cosmos-primary-key',
        specversion: '1.0',
        data: { days: 30 },
      },
    });
  });

  it('keeps Event Grid schema events published with the sandbox token credential', async () => {
    // Prepare
    const sandbox = createSandbox();
    const client = new EventGridPublisherClient(TOPIC, 'EventGrid', sandbox.credential, {
      httpClient: sandbox.httpClient,
    });

    // Act
    await client.send([
      { eventType: 'Stampkeeper.Test', subject: 'a', dataVersion: '1.0', data: { n: 1 } },
      { eventType: 'Stampkeeper.Test', subject: 'b', dataVersion: '1.0', data: { n: 2 } },
    ]);

    // Assess
    const published = sandbox.eventGrid.published();
    expect(published.map((p) => [p.schema, p.auth, p.event.subject])).toEqual([
      ['EventGridSchema', 'bearer', 'a'],
      ['EventGridSchema', 'bearer', 'b'],
    ]);
    expect(published[0]!.event).toHaveProperty('id');
    expect(published[0]!.event).toHaveProperty('eventTime');
  });

  it('refuses an unauthenticated publish with 401 and keeps nothing', async () => {
    // Prepare
    const sandbox = createSandbox();
    const request = createPipelineRequest({
      url: `${TOPIC}?api-version=2018-01-01`,
      method: 'POST',
      headers: createHttpHeaders({ 'content-type': 'application/json' }),
      body: JSON.stringify([
        {
          id: '1',
          subject: 's',
          eventType: 't',
          eventTime: '2026-01-01T00:00:00Z',
          data: {},
          dataVersion: '1',
        },
      ]),
    });

    // Act
    const response = await sandbox.httpClient.sendRequest(request);

    // Assess
    expect(response.status).toBe(401);
    expect(JSON.parse(response.bodyAsText!).error.code).toBe('Unauthorized');
    expect(sandbox.eventGrid.published()).toEqual([]);
  });

  it('rejects a batch with an invalid event as a whole (400), keeping none of it', async () => {
    // Prepare
    const sandbox = createSandbox();
    const request = createPipelineRequest({
      url: `${TOPIC}?api-version=2018-01-01`,
      method: 'POST',
      headers: createHttpHeaders({
        'content-type': 'application/cloudevents-batch+json; charset=utf-8',
        'aeg-sas-key': 'k',
      }),
      body: JSON.stringify([
        { id: '1', source: '/s', type: 't', specversion: '1.0' },
        { id: '2', source: '/s', specversion: '1.0' },
      ]),
    });

    // Act
    const response = await sandbox.httpClient.sendRequest(request);

    // Assess
    expect(response.status).toBe(400);
    expect(JSON.parse(response.bodyAsText!).error.message).toContain('event[1].type is required');
    expect(sandbox.eventGrid.published()).toEqual([]);
  });

  it('answers an unknown path on a topic host with a 404 Azure error', async () => {
    // Prepare
    const sandbox = createSandbox();
    const request = createPipelineRequest({
      url: 'https://notify-topic.westeurope-1.eventgrid.azure.net/api/other?api-version=2018-01-01',
      method: 'POST',
      headers: createHttpHeaders({ 'aeg-sas-key': 'k' }),
    });

    // Act
    const response = await sandbox.httpClient.sendRequest(request);

    // Assess
    expect(response.status).toBe(404);
    expect(JSON.parse(response.bodyAsText!)).toMatchObject({ error: { code: 'NotFound' } });
  });
});

describe('sandbox webhook sink', () => {
  it('records requests to any other host without their Authorization header, and answers 200', async () => {
    // Prepare
    const sandbox = createSandbox({ scenario: { clock: { start: '2026-01-01T00:00:00Z' } } });
    const request = createPipelineRequest({
      url: 'https://example.webhook.office.com/webhookb2/abc/IncomingWebhook/def?sig=top-secret-signature',
      method: 'POST',
      headers: createHttpHeaders({ 'content-type': 'application/json', authorization: 'Bearer abc.def' }),
      body: JSON.stringify({ type: 'message', text: 'hello' }),
    });

    // Act
    const response = await sandbox.httpClient.sendRequest(request);

    // Assess
    expect(response.status).toBe(200);
    const [record] = sandbox.webhooks();
    expect(record).toMatchObject({
      method: 'POST',
      body: { type: 'message', text: 'hello' },
      time: '2026-01-01T00:00:00.000Z',
    });
    expect(record!.headers).not.toHaveProperty('authorization');
    expect(JSON.stringify(record)).not.toContain('top-secret-signature');
  });
});
