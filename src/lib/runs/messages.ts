import { ValidationError } from '../core/errors';
import type { WorkMessage } from '../ports/runs';

/**
 * Parses a work message as the queue trigger receives it (an object, or its JSON text). Throws
 * `ValidationError` for anything else, so the trigger can settle it as poison.
 */
export function parseWorkMessage(body: unknown): WorkMessage {
  let value = body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      throw new ValidationError('Work message is not JSON', ['body must be a JSON object']);
    }
  }
  const problems: string[] = [];
  const v = value as Partial<WorkMessage> | null;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ValidationError('Work message is not an object', ['body must be a JSON object']);
  }
  if (typeof v.runId !== 'string' || v.runId === '') problems.push('runId must be a non-empty string');
  if (v.step !== undefined && typeof v.step !== 'string') problems.push('step must be a string');
  if (v.ticket !== undefined && (!Number.isInteger(v.ticket) || v.ticket < 0)) {
    problems.push('ticket must be a non-negative integer');
  }
  if (problems.length > 0) throw new ValidationError('Invalid work message', problems);
  const message: WorkMessage = { runId: v.runId! };
  if (v.step !== undefined) message.step = v.step;
  if (v.ticket !== undefined) message.ticket = v.ticket;
  return message;
}
