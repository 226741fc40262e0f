/**
 * The Event Grid topic publish endpoint (`POST https://{topic}.{region}-1.eventgrid.azure.net/api/events`,
 * api-version 2018-01-01) as a sink: it checks what `EventGridPublisherClient` sends (auth header,
 * content type, the required fields of each schema), keeps every event for reading, and answers 200
 * with an empty body like the service.
 */
import type { SandboxClock } from '../clock';
import type { SandboxCredential } from '../credential';
import { bearerToken } from '../credential';
import { azureError, parseJson, type SandboxReply, type SandboxRequest } from '../http';
import type { ServiceEmulator } from '../router';

export const EVENT_GRID_HOST_SUFFIX = '.eventgrid.azure.net';
export const EVENT_GRID_RESOURCE = 'https://eventgrid.azure.net';
const PUBLISH_API_VERSION = '2018-01-01';

export type PublishedSchema = 'EventGridSchema' | 'CloudEventSchemaV1_0';

export interface PublishedEvent {
  topicHost: string;
  schema: PublishedSchema;
  event: Record<string, unknown>;
  /** How the publisher authenticated: access key, SAS token or Entra ID bearer token. */
  auth: 'key' | 'sas' | 'bearer';
  /** Sandbox-clock time the topic received it. */
  time: string;
}

const EVENT_GRID_REQUIRED = ['id', 'subject', 'eventType', 'eventTime', 'data', 'dataVersion'];
const CLOUD_EVENT_REQUIRED = ['id', 'source', 'type', 'specversion'];

export class EventGridSink implements ServiceEmulator {
  readonly name = 'eventgrid';
  private readonly events: PublishedEvent[] = [];

  constructor(
    private readonly clock: SandboxClock,
    private readonly credential: SandboxCredential,
  ) {}

  matches(hostname: string): boolean {
    return hostname.endsWith(EVENT_GRID_HOST_SUFFIX);
  }

  published(): PublishedEvent[] {
    return this.events.map((e) => structuredClone(e));
  }

  async handle(req: SandboxRequest): Promise<SandboxReply> {
    const auth = this.authenticate(req);
    if (typeof auth !== 'string') return auth;
    if (req.url.pathname.replace(/\/$/, '') !== '/api/events') {
      return azureError(
        404,
        'NotFound',
        `The requested resource ${req.url.pathname} does not exist on an Event Grid topic.`,
      );
    }
    if (req.method !== 'POST') {
      return azureError(
        405,
        'MethodNotAllowed',
        `The requested method ${req.method} is not allowed on /api/events.`,
      );
    }
    const apiVersion = req.url.searchParams.get('api-version');
    if (apiVersion !== PUBLISH_API_VERSION) {
      return azureError(
        400,
        'BadRequest',
        `The api-version '${apiVersion ?? ''}' is invalid. The supported versions are '${PUBLISH_API_VERSION}'.`,
      );
    }
    const contentType = (req.headers.get('content-type') ?? '').toLowerCase();
    const schema: PublishedSchema = contentType.startsWith('application/cloudevents-batch+json')
      ? 'CloudEventSchemaV1_0'
      : 'EventGridSchema';
    if (schema === 'EventGridSchema' && !contentType.startsWith('application/json')) {
      return azureError(400, 'BadRequest', `Unsupported content type '${contentType}'.`);
    }
    const parsed = parseJson(req.bodyText);
    if (!parsed.ok) return azureError(400, 'BadRequest', `The request body is invalid: ${parsed.reason}.`);
    if (!Array.isArray(parsed.value) || parsed.value.length === 0) {
      return azureError(400, 'BadRequest', 'The request body must be a non-empty JSON array of events.');
    }
    const required = schema === 'CloudEventSchemaV1_0' ? CLOUD_EVENT_REQUIRED : EVENT_GRID_REQUIRED;
    const problems: string[] = [];
    parsed.value.forEach((event, i) => {
      if (typeof event !== 'object' || event === null || Array.isArray(event)) {
        problems.push(`event[${i}] must be an object`);
        return;
      }
      for (const key of required) {
        if ((event as Record<string, unknown>)[key] === undefined)
          problems.push(`event[${i}].${key} is required`);
      }
      if (schema === 'CloudEventSchemaV1_0' && (event as Record<string, unknown>).specversion !== '1.0') {
        problems.push(`event[${i}].specversion must be '1.0'`);
      }
    });
    if (problems.length > 0) {
      return azureError(400, 'BadRequest', `The events are invalid: ${problems.join('; ')}.`);
    }
    // Atomic like the service: a rejected batch keeps nothing.
    const time = this.clock.now().toISOString();
    for (const event of parsed.value as Record<string, unknown>[]) {
      this.events.push({ topicHost: req.url.hostname, schema, event, auth, time });
    }
    return { status: 200 };
  }

  private authenticate(req: SandboxRequest): PublishedEvent['auth'] | SandboxReply {
    if (req.headers.get('aeg-sas-key')) return 'key';
    if (req.headers.get('aeg-sas-token')) return 'sas';
    const token = bearerToken(req.headers.get('authorization'));
    if (token) {
      const info = this.credential.inspect(token);
      if (info && info.audience === EVENT_GRID_RESOURCE && info.expiresOnTimestamp > Date.now())
        return 'bearer';
      return azureError(401, 'Unauthorized', 'The bearer token is not valid for the Event Grid audience.');
    }
    return azureError(
      401,
      'Unauthorized',
      'The request is not authorized: give an aeg-sas-key, an aeg-sas-token or an Authorization bearer token.',
    );
  }
}
