// An open socket whose access token expires without a refresh is closed with 4001
// (docs/protocol.md, "Tokens on an open socket": at `tokenExpiresAt`). The service issues
// tokens with the shortest lifetime its configuration allows (ACCESS_TOKEN_TTL_SECONDS,
// minimum 30), so this file waits about 30 s; jest runs it beside the others.
import { EnvSchema } from '../../services/message/src/config';
import { startGatewayHarness, within, type GatewayHarness } from '../support/gateway-harness';
import { registerUser } from '../support/message-harness';

jest.setTimeout(60_000);

/** How late after `tokenExpiresAt` the close may come (the gateway arms a timer for that instant). */
const CLOSE_BOUND_MS = 1000;

const MIN_TTL_SECONDS = (EnvSchema.properties.ACCESS_TOKEN_TTL_SECONDS as { minimum: number }).minimum;

let h: GatewayHarness;

beforeAll(async () => {
  h = await startGatewayHarness({ accessTokenTtlSeconds: MIN_TTL_SECONDS });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

test(`a token of the minimum lifetime (${MIN_TTL_SECONDS} s) closes its socket with 4001 at expiry; a refreshed socket stays`, async () => {
  const node = await h.startNode();
  const user = await registerUser(h.message.app);
  const expiring = await h.connect(node, user, { label: 'expiring' });
  const refreshed = await h.connect(node, user, { label: 'refreshed' });
  const expiresAt = expiring.hello.tokenExpiresAt;
  expect(expiresAt - Math.floor(Date.now() / 1000)).toBeGreaterThan(MIN_TTL_SECONDS - 5);
  expect(expiresAt - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(MIN_TTL_SECONDS);

  // The second socket gets a later token of the same session in an `auth` frame.
  const later = await h.signToken({ userId: user.id, sessionId: user.sessionId, exp: expiresAt + 60 });
  refreshed.ws.send(JSON.stringify({ type: 'auth', id: 'renew', token: later }));
  expect((await refreshed.next('ack', (ack) => ack.id === 'renew')).tokenExpiresAt).toBe(expiresAt + 60);

  // Before expiry the socket serves.
  expiring.ws.send(JSON.stringify({ type: 'ping', id: 'alive' }));
  await expiring.next('pong', (pong) => pong.id === 'alive');

  const waitMs = expiresAt * 1000 - Date.now() + CLOSE_BOUND_MS;
  const close = await within(expiring.closed, waitMs, `a 4001 close within ${CLOSE_BOUND_MS} ms of tokenExpiresAt`);
  const closedAt = Date.now();
  expect(close.code).toBe(4001);
  // Not early (the expiry is whole seconds; the gateway's clock is this process's).
  expect(closedAt).toBeGreaterThanOrEqual(expiresAt * 1000 - 50);
  expect(closedAt).toBeLessThanOrEqual(expiresAt * 1000 + CLOSE_BOUND_MS);

  // The refreshed socket of the same session outlives the original expiry and still serves.
  expect(refreshed.isOpen).toBe(true);
  refreshed.ws.send(JSON.stringify({ type: 'ping', id: 'after' }));
  await refreshed.next('pong', (pong) => pong.id === 'after');
});
