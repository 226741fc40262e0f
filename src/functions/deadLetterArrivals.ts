import { app, type InvocationContext } from '@azure/functions';
import { getDeps } from '../lib/app/deps';
import type { DeadLetterEntity } from '../lib/config/policy';
import { handleArrivals, triggeredMessages } from '../lib/deadletters';
import { invocationLogger } from './invocation';

/**
 * One Service Bus trigger per dead-letter entity of the policy, on its dead-letter sub-queue,
 * batched (`cardinality: 'many'`). The invocation succeeds only once the batch is archived (and its
 * automatic replays scheduled): the host then completes the messages. Any failure is rethrown, so
 * the host abandons the batch and it stays in the dead-letter queue: nothing is lost.
 */
export function deadLetterArrivals(entity: DeadLetterEntity) {
  return async (messages: unknown[], context: InvocationContext): Promise<void> => {
    const deps = getDeps();
    const logger = invocationLogger(context, 'deadLetterArrivals');
    await deps.ready();
    const triggered = triggeredMessages(
      context.triggerMetadata,
      Array.isArray(messages) ? messages.length : 0,
    );
    await handleArrivals(entity, triggered, deps.deadLetters(logger), {
      actor: 'system:servicebus',
      correlationId: context.invocationId,
    });
  };
}

/** The trigger's function name for an entity (`deadLetters-orders`). */
export function deadLetterFunctionName(entity: DeadLetterEntity): string {
  return `deadLetters-${entity.name}`;
}

for (const entity of getDeps().policy.deadLetters) {
  const common = {
    connection: entity.connection,
    cardinality: 'many' as const,
    // The bodies are read again by peek (whole, typed): the trigger's copy stays bytes.
    dataType: 'binary' as const,
    handler: deadLetterArrivals(entity),
  };
  if ('queue' in entity.source) {
    app.serviceBusQueue(deadLetterFunctionName(entity), {
      queueName: `${entity.source.queue}/$deadletterqueue`,
      ...common,
    });
  } else {
    app.serviceBusTopic(deadLetterFunctionName(entity), {
      topicName: entity.source.topic,
      subscriptionName: `${entity.source.subscription}/$deadletterqueue`,
      ...common,
    });
  }
}
