const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Parses an ISO 8601 time that carries its zone (`Z` or `±hh:mm`), or `undefined`. `new Date()`
 * alone would read other formats, and zone-less ISO times, in the host's local time zone.
 */
export function parseIsoTime(value: unknown): Date | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (text.length > 40 || !ISO_WITH_ZONE.test(text)) return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
