/** Validation of the run endpoints' input: route ids and small JSON bodies, bounded before parsing. */
import { ValidationError } from '../core/errors';

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
/** A decision or a cancel body is a few hundred bytes; anything near this is not one. */
export const MAX_RUN_BODY_BYTES = 8 * 1024;
const MAX_TEXT_CHARS = 1000;

/** The run id of a route, or `ValidationError` (400). */
export function parseRunId(value: unknown): string {
  if (typeof value !== 'string' || !RUN_ID.test(value)) {
    throw new ValidationError('Invalid run id', [
      'id: must be 1-200 letters, digits, dots, dashes or underscores, starting with a letter or digit',
    ]);
  }
  return value;
}

/**
 * The body of an approve / reject / cancel request: an optional JSON object with text fields.
 * `required` names the field that must be present (`reason` for a cancel). Every problem is listed
 * (400); nothing is read beyond `MAX_RUN_BODY_BYTES`.
 */
export function parseRunBody(
  text: string,
  fields: { optional?: string[]; required?: string },
): Record<string, string> {
  if (Buffer.byteLength(text) > MAX_RUN_BODY_BYTES) {
    throw new ValidationError('The request body is too large', [
      `(body): larger than ${MAX_RUN_BODY_BYTES} bytes`,
    ]);
  }
  const allowed = new Set([...(fields.optional ?? []), ...(fields.required ? [fields.required] : [])]);
  let value: unknown = {};
  if (text.trim() !== '') {
    try {
      value = JSON.parse(text);
    } catch {
      throw new ValidationError('The request body is not valid JSON', ['(body): not valid JSON']);
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError('The request body must be a JSON object', ['(body): expected a JSON object']);
  }
  const problems: string[] = [];
  const out: Record<string, string> = {};
  for (const [key, field] of Object.entries(value as Record<string, unknown>)) {
    if (!allowed.has(key)) {
      problems.push(`${key}: unknown field (expected ${[...allowed].join(', ') || 'none'})`);
      continue;
    }
    if (typeof field !== 'string' || field.length > MAX_TEXT_CHARS) {
      problems.push(`${key}: must be text of at most ${MAX_TEXT_CHARS} characters`);
      continue;
    }
    if (field.trim() !== '') out[key] = field.trim();
  }
  if (
    fields.required &&
    out[fields.required] === undefined &&
    !problems.some((p) => p.startsWith(`${fields.required}:`))
  ) {
    problems.push(`${fields.required}: is required`);
  }
  if (problems.length > 0) throw new ValidationError('Invalid request body', problems);
  return out;
}
