import { describe, expect, it } from 'vitest';
import { readEventGridBody } from '../../../src/local/host/eventGridBody';

const read = (text: string, limits = {}) => readEventGridBody(Buffer.from(text, 'utf8'), limits);

describe('reading an Event Grid delivery body', () => {
  it('splits an array into its events, keeping each event text as sent', async () => {
    // Act
    const result = await read(' [ {"id":"a","data":{"s":"],}[{\\"x"}} ,{"id":"b"}\n] ');
    // Assess
    expect(result).toEqual({
      ok: true,
      shape: 'array',
      events: ['{"id":"a","data":{"s":"],}[{\\"x"}} ', '{"id":"b"}\n'],
    });
  });

  it('takes a single object as one event, skips a UTF-8 byte order mark, and accepts an empty array', async () => {
    // Act
    const single = await readEventGridBody(
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"id":"c"}')]),
    );
    const empty = await read('[]');
    // Assess
    expect(single).toEqual({ ok: true, shape: 'object', events: ['{"id":"c"}'] });
    expect(empty).toEqual({ ok: true, shape: 'array', events: [] });
  });

  it.each([
    ['', 400, /empty/],
    ['"text"', 400, /object or array/],
    ['[1]', 400, /not a JSON object/],
    ['[[{}]]', 400, /not a JSON object/],
    ['[{},]', 400, /missing array element/],
    ['[,{}]', 400, /missing array element/],
    ['[{} {}]', 400, /not valid JSON/],
    ['[{"a":1]', 400, /unbalanced/],
    ['[{"a":"1}]', 400, /ends early/],
    ['[{}] []', 400, /after the end/],
    ['{"a":tru}', 400, /not valid JSON/],
  ])('refuses %j with %i', async (text, status, message) => {
    // Act
    const result = await read(text);
    // Assess
    expect(result).toMatchObject({ ok: false, status });
    expect(result.ok ? '' : result.message).toMatch(message);
  });

  it('counts nesting as Newtonsoft.Json does: 64 containers pass, the 65th fails', async () => {
    // Prepare
    const event = (inner: number) => `[{"x":${'{"a":'.repeat(inner)}1${'}'.repeat(inner)}}]`;
    // Act: the array, the event and `inner` objects in it
    const atLimit = await read(event(62));
    const overLimit = await read(event(63));
    // Assess
    expect(atLimit.ok).toBe(true);
    expect(overLimit).toMatchObject({ ok: false, status: 400 });
  });

  it('refuses more events or a larger event than the limits with 413', async () => {
    // Act
    const tooMany = await read('[{},{},{}]', { maxEvents: 2 });
    const tooLarge = await read('[{"data":"0123456789"}]', { maxEventBytes: 10 });
    // Assess
    expect(tooMany).toMatchObject({ ok: false, status: 413 });
    expect(tooLarge).toMatchObject({ ok: false, status: 413 });
  });

  it('lets the event loop turn while it reads a large body', async () => {
    // Prepare: ~4 MB of events
    const body = JSON.stringify(
      Array.from({ length: 4_000 }, (_, i) => ({ id: `e-${i}`, data: 'x'.repeat(1_000) })),
    );
    let turned = false;
    setImmediate(() => {
      turned = true;
    });
    // Act
    const reading = read(body);
    const turnedBeforeDone = await Promise.race([
      reading.then(() => turned),
      new Promise<boolean>((resolve) => setImmediate(() => resolve(true))),
    ]);
    const result = await reading;
    // Assess
    expect(turnedBeforeDone).toBe(true);
    expect(result.ok && result.events.length).toBe(4_000);
  });
});
