import type { InvocationContext } from '@azure/functions';
import { createLogger, type Logger } from '../lib/core/logging';

/** A structured logger writing through the invocation context (so the host correlates the lines). */
export function invocationLogger(context: InvocationContext, operation: string): Logger {
  return createLogger(context, {
    operation,
    invocationId: context.invocationId,
    function: context.functionName,
  });
}
