/**
 * Reads the body of an Event Grid delivery into its events without blocking the event loop, with the
 * limits the Functions runtime and Event Grid put on it:
 *
 * - nesting: the Event Grid extension loads the body with Newtonsoft.Json (`JToken.Load` over a
 *   `JsonTextReader`), whose `MaxDepth` defaults to 64 since Newtonsoft.Json 13: a 65th nested array
 *   or object fails the read ("The reader's MaxDepth of 64 has been exceeded"), before any invocation;
 * - the body is a JSON array of events or one event object (`HttpRequestProcessor`: anything else is
 *   refused); each event must be an object, since the trigger binds a `JObject` per event
 *   (`EventGridTriggerBinding.BindAsync` fails on anything else);
 * - Event Grid delivers at most 5,000 events per request (output batching "max events per batch" is
 *   1-5,000) and no event over 1 MB (publishing a larger one is refused with 413), so a delivery past
 *   either bound cannot come from Event Grid and is refused whole (413) before anything runs.
 *
 * The body is scanned in slices (brackets outside strings, to find the nesting depth and the top-level
 * elements), yielding to the event loop between slices; then each element is checked with
 * `JSON.parse`, also in slices. Nothing is invoked until the whole body has passed. An element's text
 * is kept as it came, and given to the invocation as RPC `json` data (which `@azure/functions` parses
 * into the handler's event), as the host sends a serialized `JObject`.
 */

/** Newtonsoft.Json's default `JsonReader.MaxDepth` (13.0+), which the extension does not change. */
export const EVENT_GRID_MAX_DEPTH = 64;
/** Event Grid's largest batch ("max events per batch": 1 to 5,000). */
export const EVENT_GRID_MAX_EVENTS = 5_000;
/** Event Grid's largest event (1 MB; a larger one is refused at publishing). */
export const EVENT_GRID_MAX_EVENT_BYTES = 1024 * 1024;

/** Bytes scanned, or parsed, between two yields to the event loop. */
const SLICE_BYTES = 128 * 1024;

export type EventGridBody =
  | { ok: true; shape: 'array' | 'object'; events: string[] }
  | { ok: false; status: 400 | 413; message: string };

export interface EventGridBodyLimits {
  maxDepth?: number;
  maxEvents?: number;
  maxEventBytes?: number;
}

const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;

/** Resolves after pending I/O callbacks have had their turn. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function isWhitespace(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0a || byte === 0x0d;
}

function refuse(status: 400 | 413, message: string): EventGridBody {
  return { ok: false, status, message };
}

/**
 * Splits a delivery body into its events' JSON texts, or says why it is refused (400 for what the
 * extension cannot read or bind, 413 for what Event Grid never sends). Never throws.
 */
export async function readEventGridBody(
  body: Buffer,
  limits: EventGridBodyLimits = {},
): Promise<EventGridBody> {
  const maxDepth = limits.maxDepth ?? EVENT_GRID_MAX_DEPTH;
  const maxEvents = limits.maxEvents ?? EVENT_GRID_MAX_EVENTS;
  const maxEventBytes = limits.maxEventBytes ?? EVENT_GRID_MAX_EVENT_BYTES;

  let start = 0;
  // A UTF-8 byte order mark, which .NET's ReadAsStringAsync drops.
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) start = 3;
  while (start < body.length && isWhitespace(body[start] as number)) start++;
  let end = body.length;
  while (end > start && isWhitespace(body[end - 1] as number)) end--;
  if (start === end)
    return refuse(400, 'The request content must be a JSON object or array, but it is empty.');
  const first = body[start] as number;
  if (first !== OPEN_ARRAY && first !== OPEN_OBJECT) {
    return refuse(400, 'The request content must be a JSON object or array.');
  }

  // Pass 1: nesting and top-level elements. `closers` holds the byte expected to close each open
  // container, so a mismatched bracket is caught here; everything else is left to JSON.parse.
  const closers: number[] = [];
  const elements: Array<[number, number]> = [];
  let inString = false;
  let escaped = false;
  let elementStart = -1;
  let closedAt = -1;
  for (let sliceStart = start; sliceStart < end; sliceStart += SLICE_BYTES) {
    if (sliceStart > start) await yieldToEventLoop();
    const sliceEnd = Math.min(end, sliceStart + SLICE_BYTES);
    for (let i = sliceStart; i < sliceEnd; i++) {
      const byte = body[i] as number;
      if (inString) {
        if (escaped) escaped = false;
        else if (byte === BACKSLASH) escaped = true;
        else if (byte === QUOTE) inString = false;
        continue;
      }
      if (closedAt >= 0) {
        return refuse(400, 'The request content is not valid JSON: text after the end of the value.');
      }
      const depthBefore = closers.length;
      if (byte === QUOTE) {
        inString = true;
      } else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
        if (depthBefore >= maxDepth) {
          return refuse(
            400,
            `The request content nests deeper than ${maxDepth} levels (the Functions host's JSON reader MaxDepth).`,
          );
        }
        closers.push(byte === OPEN_ARRAY ? CLOSE_ARRAY : CLOSE_OBJECT);
      } else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) {
        if (closers.pop() !== byte)
          return refuse(400, 'The request content is not valid JSON: unbalanced brackets.');
        if (closers.length === 0) closedAt = i;
      }
      // Top-level array: an element runs from its first byte to the comma or bracket after it.
      if (first !== OPEN_ARRAY || depthBefore !== 1) continue;
      if (byte === COMMA || byte === CLOSE_ARRAY) {
        if (elementStart >= 0) {
          elements.push([elementStart, i]);
          elementStart = -1;
          if (elements.length > maxEvents) {
            return refuse(
              413,
              `The delivery holds more than ${maxEvents} events (Event Grid's largest batch).`,
            );
          }
        } else if (byte === COMMA || elements.length > 0) {
          return refuse(400, 'The request content is not valid JSON: a missing array element.');
        }
      } else if (elementStart < 0 && !isWhitespace(byte)) {
        elementStart = i;
      }
    }
  }
  if (inString || closers.length > 0)
    return refuse(400, 'The request content is not valid JSON: it ends early.');
  if (first === OPEN_OBJECT) elements.push([start, end]);

  // Pass 2: each element is a JSON object (JSON.parse is the judge of the element's syntax).
  const events: string[] = [];
  let parsedSinceYield = 0;
  for (const [from, to] of elements) {
    if (to - from > maxEventBytes) {
      return refuse(413, `An event is larger than ${maxEventBytes} bytes (Event Grid's largest event).`);
    }
    if (parsedSinceYield >= SLICE_BYTES) {
      await yieldToEventLoop();
      parsedSinceYield = 0;
    }
    parsedSinceYield += to - from;
    const text = body.toString('utf8', from, to);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return refuse(400, `The request content is not valid JSON (event ${events.length + 1}).`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return refuse(400, `Event ${events.length + 1} is not a JSON object.`);
    }
    events.push(text);
  }
  return { ok: true, shape: first === OPEN_ARRAY ? 'array' : 'object', events };
}
