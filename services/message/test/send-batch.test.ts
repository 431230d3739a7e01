import { randomUUID } from 'node:crypto';
import { Limits, type HistoryPage, type SendBatchResponse, type SendBatchResult, type SendMessageResponse } from '@parley/protocol';
import {
  call,
  createGroupAs,
  errorOf,
  HARNESS_START_TIMEOUT_MS,
  MESSAGE_BACKENDS,
  registerUser,
  registerUsers,
  startMessageHarness,
  type MessageHarness,
  type TestUser,
} from '../../../tests/support/message-harness';

// POST /internal/v1/send-batch (docs/api.md): the gateway's call for many users' sends.
// Nothing in it trusts the caller: each send is authorized with its own token and answered
// as the single-send route would answer it, and a bad send costs only itself.

let h: MessageHarness;

const URL = '/internal/v1/send-batch';

interface Item {
  accessToken: string;
  conversationId: string;
  clientMessageId: string;
  body: string;
}

const item = (user: TestUser, conversationId: string, clientMessageId: string): Item => ({
  accessToken: user.accessToken,
  conversationId,
  clientMessageId,
  body: `body ${clientMessageId}`,
});

const post = (sends: unknown) => h.app.inject({ method: 'POST', url: URL, payload: { sends } as object });

async function results(sends: Item[]): Promise<SendBatchResult[]> {
  const response = await post(sends);
  expect(response.statusCode).toBe(200);
  return response.json<SendBatchResponse>().results;
}

const codeOf = (result: SendBatchResult) => ({ status: result.status, code: result.error?.code });

describe.each(MESSAGE_BACKENDS)('on %s', (backend) => {
  beforeAll(async () => {
    h = await startMessageHarness({}, { backend });
  }, HARNESS_START_TIMEOUT_MS);
  afterAll(async () => h.close());

  it('answers each send in order as the single-send route would, and stores only the rightful ones', async () => {
    const [owner, member, outsider] = await registerUsers(h.app, 3);
    const group = await createGroupAs(h.app, owner!, [member!], 'batch');
    const earlier = (
      await call(h.app, owner!, 'POST', `/v1/conversations/${group.id}/messages`, { clientMessageId: 'earlier', body: 'earlier' })
    ).json<SendMessageResponse>();
    const revoked = await registerUser(h.app);
    expect((await call(h.app, owner!, 'POST', `/v1/conversations/${group.id}/members`, { userIds: [revoked.id] })).statusCode).toBeLessThan(300);
    expect((await call(h.app, revoked, 'POST', '/v1/auth/logout')).statusCode).toBeLessThan(300);
    // The owner's real token with the signature's first character changed (the last one
    // carries unused bits: changing it can leave the signature as it was).
    const [header, payload, signature] = owner!.accessToken.split('.');
    const forged = `${header}.${payload}.${signature!.startsWith('A') ? 'B' : 'A'}${signature!.slice(1)}`;

    const answers = await results([
      item(owner!, group.id, 'a'),
      { ...item(owner!, group.id, 'forged'), accessToken: forged },
      item(member!, group.id, 'b'),
      item(outsider!, group.id, 'not-a-member'),
      item(owner!, group.id, 'earlier'),
      item(revoked, group.id, 'revoked'),
      item(owner!, randomUUID(), 'missing'),
      item(member!, group.id, 'b'),
    ]);

    expect(answers.map((answer) => answer.status)).toEqual([201, 401, 201, 403, 200, 401, 404, 200]);
    expect(codeOf(answers[1]!)).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
    expect(codeOf(answers[3]!)).toEqual({ status: 403, code: 'NOT_A_MEMBER' });
    expect(codeOf(answers[5]!)).toEqual({ status: 401, code: 'SESSION_REVOKED' });
    expect(codeOf(answers[6]!)).toEqual({ status: 404, code: 'CONVERSATION_NOT_FOUND' });
    expect(answers[4]!.response).toEqual({ ...earlier, duplicate: true });
    // The same send twice in one call: one message, the second answer names it.
    expect(answers[7]!.response?.message.seq).toBe(answers[2]!.response?.message.seq);
    expect(answers[0]!.response?.message.senderId).toBe(owner!.id);
    expect(answers[2]!.response?.message.senderId).toBe(member!.id);

    const page = (await call(h.app, member!, 'GET', `/v1/conversations/${group.id}/messages?limit=50`)).json<HistoryPage>();
    expect(page.messages.map((message) => message.clientMessageId).sort()).toEqual(['a', 'b', 'earlier']);
    expect(page.messages.map((message) => message.seq)).toEqual([1, 2, 3]);
  });

  it('refuses a malformed call whole, with the documented error, and stores nothing of it', async () => {
    const [owner] = await registerUsers(h.app, 1);
    const group = await createGroupAs(h.app, owner!, [], 'malformed');
    const good = item(owner!, group.id, 'good');
    const tooMany = Array.from({ length: Limits.sendBatchMaxItems + 1 }, (_, index) => item(owner!, group.id, `many-${index}`));

    for (const sends of [[], tooMany, [good, { ...good, extra: 1 }], [good, { ...good, body: 'x'.repeat(Limits.messageBodyMaxLength + 1) }]]) {
      expect(errorOf(await post(sends))).toEqual({ status: 400, code: 'VALIDATION_FAILED' });
    }
    const notJson = await h.app.inject({ method: 'POST', url: URL, headers: { 'content-type': 'application/json' }, payload: '{"sends": [' });
    expect(errorOf(notJson)).toEqual({ status: 400, code: 'MALFORMED_JSON' });

    const page = (await call(h.app, owner!, 'GET', `/v1/conversations/${group.id}/messages`)).json<HistoryPage>();
    expect(page.messages).toEqual([]);
  });

  it('is not part of the public API: the OpenAPI document tags it internal and nginx has no route to it', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, { post?: { tags?: string[] } }> }>();
    expect(doc.paths[URL]?.post?.tags).toEqual(['internal']);
  });
});
