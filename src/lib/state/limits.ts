/**
 * Table Storage limits: a string property holds at most 64 KiB (32 Ki UTF-16 code units), an entity
 * at most 1 MiB. JSON we store is cut to fit, and the cut stays valid JSON with a marker so that a
 * reader knows something is missing rather than failing to parse.
 */
export const MAX_STRING_PROPERTY_CHARS = 32 * 1024;

/** Leaves head room for the marker object wrapped around a preview. */
const MARKER_OVERHEAD = 200;

export interface TruncationMarker {
  _truncated: true;
  originalLength: number;
  preview: string;
}

/**
 * Serialises `value` as JSON of at most `maxChars` characters. When it is longer, returns the JSON of
 * a `TruncationMarker` whose `preview` holds the start of the original text.
 */
export function fitJson(value: unknown, maxChars = MAX_STRING_PROPERTY_CHARS): string {
  const json = JSON.stringify(value) ?? 'null';
  if (json.length <= maxChars) return json;
  let previewLength = Math.max(0, maxChars - MARKER_OVERHEAD);
  // JSON.stringify escapes quotes and backslashes in the preview; shrink until the whole fits.
  for (;;) {
    const marker: TruncationMarker = {
      _truncated: true,
      originalLength: json.length,
      preview: json.slice(0, previewLength),
    };
    const out = JSON.stringify(marker);
    if (out.length <= maxChars || previewLength === 0) return out;
    previewLength = Math.max(
      0,
      previewLength - Math.max(out.length - maxChars, Math.ceil(previewLength / 10)),
    );
  }
}

/** Parses JSON we wrote; `undefined` for an absent property. */
export function parseJson(text: unknown): unknown {
  if (typeof text !== 'string' || text === '') return undefined;
  return JSON.parse(text);
}

/** Whether stored JSON was cut by `fitJson`. */
export function isTruncationMarker(value: unknown): value is TruncationMarker {
  return typeof value === 'object' && value !== null && (value as TruncationMarker)._truncated === true;
}
