import type { EntityCounts, EntityDescription, RuleView, ServiceBusBroker } from './broker';
import type { ConsumerStats } from './consumer';
import type { MessageView } from './store';

/**
 * The Service Bus part of the sandbox's inspection API (`/sandbox/servicebus`): every queue and
 * subscription with its counts, options and rules, the simulated consumers' outcomes, and a
 * bounded look at messages. Bodies are shown (they are the workload's data, not secrets), cut to
 * `MAX_BODY_PREVIEW` characters; at most `MAX_MESSAGES` messages per request.
 */

export const MAX_MESSAGES = 100;
export const DEFAULT_MESSAGES = 20;
export const MAX_BODY_PREVIEW = 2048;

export interface ServiceBusSummary {
  endpoint: string;
  tier: string;
  entities: Array<EntityDescription & { counts: EntityCounts; rules?: RuleView[] }>;
  consumers: ConsumerStats[];
}

export interface MessagePreview extends Omit<MessageView, 'body'> {
  /** The body as text (JSON for structured bodies), cut to `MAX_BODY_PREVIEW` characters. */
  body: string;
  bodyTruncated: boolean;
}

export interface ServiceBusInspector {
  summary(): ServiceBusSummary;
  /** Answers `GET /sandbox/servicebus/messages?path=&queue=active|deadLetter|scheduled&limit=`. */
  messages(query: URLSearchParams): { status: number; body: unknown };
}

/** The inspector of a started broker and its consumers. */
export function createServiceBusInspector(
  broker: ServiceBusBroker,
  consumers: () => ConsumerStats[],
): ServiceBusInspector {
  return {
    summary: () => ({
      endpoint: `sb://127.0.0.1:${broker.port}`,
      tier: broker.tier,
      entities: broker.entities.paths().map((path) => {
        const entity = broker.entities.get(path);
        const rules = entity.rules();
        return { ...entity.describe(), counts: entity.counts(), ...(rules ? { rules } : {}) };
      }),
      consumers: consumers(),
    }),
    messages(query) {
      const path = query.get('path');
      const which = query.get('queue') ?? 'active';
      const limitText = query.get('limit');
      const limit = limitText === null ? DEFAULT_MESSAGES : Number(limitText);
      if (!path)
        return badRequest(
          'give the path of a queue or subscription: ?path=orders or ?path=events/Subscriptions/billing',
        );
      if (which !== 'active' && which !== 'deadLetter' && which !== 'scheduled') {
        return badRequest('queue must be active, deadLetter or scheduled');
      }
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_MESSAGES) {
        return badRequest(`limit must be an integer from 1 to ${MAX_MESSAGES}`);
      }
      let entity: ReturnType<ServiceBusBroker['entities']['get']>;
      try {
        entity = broker.entities.get(path);
      } catch {
        return {
          status: 404,
          body: {
            error: {
              code: 'NotFound',
              message: `'${path}' is not a queue or subscription of the sandbox broker`,
            },
          },
        };
      }
      const counts = entity.counts();
      if (which === 'scheduled') {
        return {
          status: 200,
          body: { path: entity.path, queue: which, counts, messages: entity.scheduled().slice(0, limit) },
        };
      }
      return {
        status: 200,
        body: { path: entity.path, queue: which, counts, messages: entity.head(which, limit).map(preview) },
      };
    },
  };
}

function badRequest(message: string) {
  return { status: 400, body: { error: { code: 'BadRequest', message } } };
}

function preview(view: MessageView): MessagePreview {
  const { body, ...rest } = view;
  let text: string;
  if (Buffer.isBuffer(body)) text = body.toString('utf8');
  else if (typeof body === 'string') text = body;
  else text = JSON.stringify(body) ?? '';
  return {
    ...rest,
    body: text.length > MAX_BODY_PREVIEW ? text.slice(0, MAX_BODY_PREVIEW) : text,
    bodyTruncated: text.length > MAX_BODY_PREVIEW,
  };
}
