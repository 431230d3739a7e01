import {
  call,
  HARNESS_START_TIMEOUT_MS,
  MESSAGE_BACKENDS,
  registerUser,
  startMessageHarness,
  type MessageHarness,
} from '../../../tests/support/message-harness';

let h: MessageHarness;

describe.each(MESSAGE_BACKENDS)('on %s', (backend) => {
  beforeAll(async () => {
    h = await startMessageHarness({}, { backend });
  }, HARNESS_START_TIMEOUT_MS);
  afterAll(async () => h.close());

  test('register, open a direct conversation, send, read', async () => {
    const alice = await registerUser(h.app);
    const bob = await registerUser(h.app);
    const open = await call(h.app, alice, 'POST', '/v1/conversations/direct', { userId: bob.id });
    expect(open.statusCode).toBe(201);
    const conversationId = open.json().id;
    const sent = await call(h.app, alice, 'POST', `/v1/conversations/${conversationId}/messages`, {
      clientMessageId: 'm1',
      body: 'hello',
    });
    expect(sent.statusCode).toBe(201);
    expect(sent.json().message.seq).toBe(1);
    const list = await call(h.app, bob, 'GET', '/v1/conversations');
    expect(list.json().conversations[0].unreadCount).toBe(1);
  });

  test('readiness checks what the backend has: PostgreSQL, and Redis when there is one', async () => {
    const response = await h.app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      status: 'ready',
      checks: backend === 'postgres' ? { postgres: 'ok', redis: 'ok' } : { postgres: 'ok' },
    });
  });
});
