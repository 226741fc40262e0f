import { describe, expect, it } from 'vitest';
import { messageOwner } from '../../../src/lib/runs/worker';

describe('messageOwner', () => {
  it('is the message and its ticket: the same for every delivery of one message, different across messages', () => {
    // Act
    const first = messageOwner({ messageId: 'm-1', invocationId: 'inv-1' }, 4);
    const redelivered = messageOwner({ messageId: 'm-1', invocationId: 'inv-2' }, 4);
    const copy = messageOwner({ messageId: 'm-2', invocationId: 'inv-3' }, 4);
    const ticketless = messageOwner({ messageId: 'm-3', invocationId: 'inv-4' }, undefined);
    const noId = messageOwner({ invocationId: 'inv-5' }, 1);

    // Assess
    expect(first).toBe('msg:m-1:4');
    expect(redelivered).toBe(first);
    expect(copy).not.toBe(first);
    expect(ticketless).toBe('msg:m-3:*');
    expect(noId).toBe('inv:inv-5:1');
  });
});
