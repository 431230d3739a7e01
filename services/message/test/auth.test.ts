// Authentication end to end: register, login, the user routes, the JWKS, every way an
// access token can be forged or misused, refresh-token rotation with reuse detection,
// logout, the login rate limit and password storage. On both backends: PostgreSQL and
// Redis, and the embedded one (PGlite, rate limits in memory).
import { generateSigningJwk, hashRefreshToken, importSigningJwk, type SigningKey } from '@parley/auth';
import type { AuthResponse, BusEvent, ErrorBody, Me, PublicUser, Tokens } from '@parley/protocol';
import argon2 from 'argon2';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, SignJWT, type JWK } from 'jose';
import {
  call,
  registerUser,
  HARNESS_START_TIMEOUT_MS,
  MESSAGE_BACKENDS,
  startMessageHarness,
  uniqueName,
  type MessageHarness,
  type TestUser,
} from '../../../tests/support/message-harness';

const PASSWORD = 'correct horse battery staple';
const OWASP_ARGON2ID_PREFIX = '$argon2id$v=19$m=19456,t=2,p=1$';

type InjectResponse = Awaited<ReturnType<MessageHarness['app']['inject']>>;

let h: MessageHarness;

// ---------------------------------------------------------------------------------------
// Helpers

function expectError(response: InjectResponse, status: number, code: string): void {
  expect({ status: response.statusCode, code: response.json<ErrorBody>().error.code }).toEqual({ status, code });
  expect(typeof response.json<ErrorBody>().error.message).toBe('string');
}

function register(payload: Record<string, unknown>, app = h.app) {
  return app.inject({ method: 'POST', url: '/v1/auth/register', payload });
}

function login(payload: Record<string, unknown>, options: { app?: MessageHarness['app']; remoteAddress?: string } = {}) {
  return (options.app ?? h.app).inject({
    method: 'POST',
    url: '/v1/auth/login',
    payload,
    ...(options.remoteAddress ? { remoteAddress: options.remoteAddress } : {}),
  });
}

function refresh(refreshToken: string) {
  return h.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken } });
}

function meWith(authorization?: string) {
  return h.app.inject({ method: 'GET', url: '/v1/me', headers: authorization === undefined ? {} : { authorization } });
}

function bearer(token: string): string {
  return `Bearer ${token}`;
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

interface ForgeOptions {
  key?: SigningKey['privateKey'];
  kid?: string;
  sub?: string;
  sid?: string | null;
  issuer?: string;
  audience?: string;
  iat?: number;
  exp?: number;
}

/** Signs an EdDSA access token; by default exactly like the service would (harness key, live claims). */
async function forge(user: TestUser, options: ForgeOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const sid = options.sid === undefined ? user.sessionId : options.sid;
  return new SignJWT(sid === null ? {} : { sid })
    .setProtectedHeader({ alg: 'EdDSA', kid: options.kid ?? h.config.signingKey.kid, typ: 'JWT' })
    .setSubject(options.sub ?? user.id)
    .setIssuer(options.issuer ?? h.config.issuer)
    .setAudience(options.audience ?? h.config.audience)
    .setIssuedAt(options.iat ?? now)
    .setExpirationTime(options.exp ?? now + 600)
    .sign(options.key ?? h.config.signingKey.privateKey);
}

function waitForRevocation(sessionId: string) {
  return h.events.waitFor(
    (entry) => entry.event.type === 'session.revoked' && entry.event.sessionId === sessionId,
  );
}

function revocationsOf(sessionId: string): Array<{ channel: string; event: BusEvent }> {
  return h.events.received.filter(
    (entry) => entry.event.type === 'session.revoked' && entry.event.sessionId === sessionId,
  );
}

/** The algorithm, version and cost parameters of a PHC-format argon2 hash, whatever their order. */
function argon2Params(hash: string): { id: string; version: string; params: Record<string, number> } {
  const [, id = '', version = '', params = ''] = /^\$([a-z0-9]+)\$v=(\d+)\$([^$]+)\$/.exec(hash) ?? [];
  return {
    id,
    version,
    params: Object.fromEntries(params.split(',').map((pair) => [pair.split('=')[0], Number(pair.split('=')[1])])),
  };
}

async function passwordHashOf(userId: string): Promise<string> {
  const row = await h.db.kysely
    .selectFrom('users')
    .select('password_hash')
    .where('id', '=', userId)
    .executeTakeFirstOrThrow();
  return row.password_hash;
}

describe.each(MESSAGE_BACKENDS)('on %s', (backend) => {
  beforeAll(async () => {
    h = await startMessageHarness({}, { backend });
  }, HARNESS_START_TIMEOUT_MS);
  afterAll(async () => h.close());

  // ---------------------------------------------------------------------------------------

  describe('register', () => {
    test('201 with the user and a working token pair', async () => {
      const username = uniqueName('reg');
      const response = await register({ username, password: PASSWORD });
      expect(response.statusCode).toBe(201);
      const body = response.json<AuthResponse>();
      expect(body.user).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        username,
        displayName: username, // defaults to the username
        createdAt: expect.any(String),
      });
      expect(Number.isNaN(Date.parse(body.user.createdAt))).toBe(false);
      expect(body.tokens).toEqual({
        tokenType: 'Bearer',
        accessToken: expect.any(String),
        accessTokenExpiresAt: expect.any(String),
        refreshToken: expect.any(String),
        refreshTokenExpiresAt: expect.any(String),
        sessionId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      });
      expect(response.body).not.toContain(PASSWORD);
      expect(response.body).not.toContain('argon2');

      // The access token is an EdDSA JWT with the harness kid, for this user and session.
      const header = decodeProtectedHeader(body.tokens.accessToken);
      expect(header).toMatchObject({ alg: 'EdDSA', kid: h.config.signingKey.kid });
      const claims = decodeJwt(body.tokens.accessToken);
      expect(claims).toMatchObject({
        sub: body.user.id,
        sid: body.tokens.sessionId,
        iss: h.config.issuer,
        aud: h.config.audience,
      });
      expect(new Date((claims.exp ?? 0) * 1000).toISOString()).toBe(body.tokens.accessTokenExpiresAt);

      const me = await meWith(bearer(body.tokens.accessToken));
      expect(me.statusCode).toBe(200);
      expect(me.json<Me>().id).toBe(body.user.id);
    });

    test('a display name given at registration is kept', async () => {
      const response = await register({ username: uniqueName('reg'), password: PASSWORD, displayName: 'Zoë Ω' });
      expect(response.statusCode).toBe(201);
      expect(response.json<AuthResponse>().user.displayName).toBe('Zoë Ω');
    });

    test('a username taken in any letter case gives 409 USERNAME_TAKEN', async () => {
      const username = uniqueName('Taken');
      expect((await register({ username, password: PASSWORD })).statusCode).toBe(201);
      expectError(await register({ username, password: PASSWORD }), 409, 'USERNAME_TAKEN');
      expectError(await register({ username: username.toUpperCase(), password: PASSWORD }), 409, 'USERNAME_TAKEN');
      expectError(await register({ username: username.toLowerCase(), password: 'another password' }), 409, 'USERNAME_TAKEN');
      const rows = await h.db.kysely
        .selectFrom('users')
        .select('id')
        .where('username', 'ilike', username)
        .execute();
      expect(rows).toHaveLength(1);
    });

    test('two concurrent registrations of one name in different case: exactly one wins', async () => {
      const username = uniqueName('race');
      const responses = await Promise.all([
        register({ username: username.toLowerCase(), password: PASSWORD }),
        register({ username: username.toUpperCase(), password: PASSWORD }),
      ]);
      expect(responses.map((r) => r.statusCode).sort()).toEqual([201, 409]);
      const loser = responses.find((r) => r.statusCode === 409);
      expectError(loser as InjectResponse, 409, 'USERNAME_TAKEN');
    });

    test('invalid usernames and passwords are refused with 400 VALIDATION_FAILED', async () => {
      expectError(await register({ username: 'has space', password: PASSWORD }), 400, 'VALIDATION_FAILED');
      expectError(await register({ username: 'ab', password: PASSWORD }), 400, 'VALIDATION_FAILED');
      expectError(await register({ username: uniqueName(), password: 'short' }), 400, 'VALIDATION_FAILED');
      expectError(await register({ username: uniqueName() }), 400, 'VALIDATION_FAILED');
    });

    test('stores an argon2id hash with the OWASP parameters (m=19456, t=2, p=1)', async () => {
      const user = await registerUser(h.app, uniqueName('hash'));
      const hash = await passwordHashOf(user.id);
      expect(argon2Params(hash)).toEqual({ id: 'argon2id', version: '19', params: { m: 19456, t: 2, p: 1 } });
      // The PHC string format (and libargon2, libsodium, PHP, ... that parse it) requires
      // the parameters in the order m,t,p.
      expect(hash.slice(0, OWASP_ARGON2ID_PREFIX.length)).toBe(OWASP_ARGON2ID_PREFIX);
      expect(hash).not.toContain(PASSWORD);
      expect(await argon2.verify(hash, PASSWORD)).toBe(true);
      // Salted: the same password for another user gives another hash.
      const other = await registerUser(h.app, uniqueName('hash'));
      expect(await passwordHashOf(other.id)).not.toBe(hash);
    });

    test('login upgrades a hash made with weaker parameters to the OWASP ones', async () => {
      const user = await registerUser(h.app, uniqueName('rehash'));
      const weak = await argon2.hash(PASSWORD, { type: argon2.argon2id, memoryCost: 4096, timeCost: 1, parallelism: 1 });
      await h.db.kysely.updateTable('users').set({ password_hash: weak }).where('id', '=', user.id).execute();
      const response = await login({ username: user.username, password: PASSWORD });
      expect(response.statusCode).toBe(200);
      expect(argon2Params(weak).params).toEqual({ m: 4096, t: 1, p: 1 });
      const upgraded = await passwordHashOf(user.id);
      expect(upgraded).not.toBe(weak);
      expect(argon2Params(upgraded)).toEqual({ id: 'argon2id', version: '19', params: { m: 19456, t: 2, p: 1 } });
      expect(await argon2.verify(upgraded, PASSWORD)).toBe(true);
    });
  });

  describe('login', () => {
    test('200 with the same user and a new session', async () => {
      const user = await registerUser(h.app, uniqueName('login'));
      const response = await login({ username: user.username, password: PASSWORD, deviceName: 'laptop' });
      expect(response.statusCode).toBe(200);
      const body = response.json<AuthResponse>();
      expect(body.user).toMatchObject({ id: user.id, username: user.username });
      expect(body.tokens.tokenType).toBe('Bearer');
      expect(body.tokens.sessionId).not.toBe(user.sessionId);
      expect(body.tokens.refreshToken).not.toBe(user.refreshToken);
      const me = await meWith(bearer(body.tokens.accessToken));
      expect(me.statusCode).toBe(200);
      expect(me.json<Me>().id).toBe(user.id);
      const session = await h.db.kysely
        .selectFrom('sessions')
        .select(['user_id', 'device_name'])
        .where('id', '=', body.tokens.sessionId)
        .executeTakeFirstOrThrow();
      expect(session).toEqual({ user_id: user.id, device_name: 'laptop' });
    });

    test('the username is matched regardless of case', async () => {
      const user = await registerUser(h.app, uniqueName('login'));
      const response = await login({ username: user.username.toUpperCase(), password: PASSWORD });
      expect(response.statusCode).toBe(200);
      expect(response.json<AuthResponse>().user.id).toBe(user.id);
    });

    test('a wrong password and an unknown user both give 401 INVALID_CREDENTIALS, indistinguishably', async () => {
      const user = await registerUser(h.app, uniqueName('login'));
      const wrongPassword = await login({ username: user.username, password: 'not the password' });
      const unknownUser = await login({ username: uniqueName('nobody'), password: PASSWORD });
      expectError(wrongPassword, 401, 'INVALID_CREDENTIALS');
      expectError(unknownUser, 401, 'INVALID_CREDENTIALS');
      expect(wrongPassword.json<ErrorBody>().error.message).toBe(unknownUser.json<ErrorBody>().error.message);
      expect(wrongPassword.body).not.toContain('accessToken');
    });
  });

  describe('user routes', () => {
    test('GET /v1/me returns the caller', async () => {
      const user = await registerUser(h.app, uniqueName('me'));
      const response = await call(h.app, user, 'GET', '/v1/me');
      expect(response.statusCode).toBe(200);
      expect(response.json<Me>()).toEqual({
        id: user.id,
        username: user.username,
        displayName: user.username,
        createdAt: expect.any(String),
      });
    });

    test('PATCH /v1/me changes the display name, visible to others', async () => {
      const user = await registerUser(h.app, uniqueName('patch'));
      const other = await registerUser(h.app, uniqueName('patch'));
      const patched = await call(h.app, user, 'PATCH', '/v1/me', { displayName: 'New Name' });
      expect(patched.statusCode).toBe(200);
      expect(patched.json<Me>()).toMatchObject({ id: user.id, username: user.username, displayName: 'New Name' });
      expect((await call(h.app, user, 'GET', '/v1/me')).json<Me>().displayName).toBe('New Name');
      const seen = await call(h.app, other, 'GET', `/v1/users/${user.id}`);
      expect(seen.json<PublicUser>().displayName).toBe('New Name');
      // The other user is untouched.
      expect((await call(h.app, other, 'GET', '/v1/me')).json<Me>().displayName).toBe(other.username);
    });

    test('PATCH /v1/me refuses an empty name, unknown fields and a missing token', async () => {
      const user = await registerUser(h.app, uniqueName('patch'));
      expectError(await call(h.app, user, 'PATCH', '/v1/me', { displayName: '' }), 400, 'VALIDATION_FAILED');
      expectError(
        await call(h.app, user, 'PATCH', '/v1/me', { displayName: 'x', username: 'hijack' }),
        400,
        'VALIDATION_FAILED',
      );
      expectError(await call(h.app, null, 'PATCH', '/v1/me', { displayName: 'x' }), 401, 'UNAUTHENTICATED');
      expect((await call(h.app, user, 'GET', '/v1/me')).json<Me>()).toMatchObject({
        username: user.username,
        displayName: user.username,
      });
    });

    test('GET /v1/users/by-username/:username is case-insensitive and shows only public fields', async () => {
      const target = await registerUser(h.app, uniqueName('Find'));
      const viewer = await registerUser(h.app, uniqueName('find'));
      for (const name of [target.username, target.username.toUpperCase(), target.username.toLowerCase()]) {
        const response = await call(h.app, viewer, 'GET', `/v1/users/by-username/${name}`);
        expect(response.statusCode).toBe(200);
        expect(response.json<PublicUser>()).toEqual({
          id: target.id,
          username: target.username,
          displayName: target.username,
        });
      }
      expectError(
        await call(h.app, viewer, 'GET', `/v1/users/by-username/${uniqueName('nobody')}`),
        404,
        'USER_NOT_FOUND',
      );
      expectError(await call(h.app, null, 'GET', `/v1/users/by-username/${target.username}`), 401, 'UNAUTHENTICATED');
    });

    test('GET /v1/users/:userId returns the public profile; unknown and invalid ids are refused', async () => {
      const target = await registerUser(h.app, uniqueName('byid'));
      const viewer = await registerUser(h.app, uniqueName('byid'));
      const response = await call(h.app, viewer, 'GET', `/v1/users/${target.id}`);
      expect(response.statusCode).toBe(200);
      expect(response.json<PublicUser>()).toEqual({
        id: target.id,
        username: target.username,
        displayName: target.username,
      });
      expectError(
        await call(h.app, viewer, 'GET', '/v1/users/00000000-0000-4000-8000-000000000000'),
        404,
        'USER_NOT_FOUND',
      );
      expectError(await call(h.app, viewer, 'GET', '/v1/users/not-a-uuid'), 400, 'VALIDATION_FAILED');
      expectError(await call(h.app, null, 'GET', `/v1/users/${target.id}`), 401, 'UNAUTHENTICATED');
    });
  });

  describe('GET /.well-known/jwks.json', () => {
    test('serves the public verification key with its kid and no private part', async () => {
      const response = await h.app.inject({ method: 'GET', url: '/.well-known/jwks.json' });
      expect(response.statusCode).toBe(200);
      const jwks = response.json<{ keys: JWK[] }>();
      const key = jwks.keys.find((k) => k.kid === h.config.signingKey.kid);
      expect(key).toMatchObject({ kty: 'OKP', crv: 'Ed25519', kid: h.config.signingKey.kid, x: expect.any(String) });
      for (const k of jwks.keys) expect(k).not.toHaveProperty('d');
      expect(response.body).not.toContain('"d"');

      // A token the service issued verifies against what it publishes.
      const user = await registerUser(h.app, uniqueName('jwks'));
      const { payload } = await jwtVerify(user.accessToken, createLocalJWKSet(jwks), {
        algorithms: ['EdDSA'],
        issuer: h.config.issuer,
        audience: h.config.audience,
      });
      expect(payload.sub).toBe(user.id);
    });
  });

  describe('access token attacks on GET /v1/me', () => {
    let alice: TestUser;
    let bob: TestUser;
    beforeAll(async () => {
      alice = await registerUser(h.app, uniqueName('alice'));
      bob = await registerUser(h.app, uniqueName('bob'));
    });

    test('control: a token forged by the test exactly like the service signs is accepted', async () => {
      const response = await meWith(bearer(await forge(alice)));
      expect(response.statusCode).toBe(200);
      expect(response.json<Me>().id).toBe(alice.id);
    });

    test('no Authorization header: 401 UNAUTHENTICATED', async () => {
      expectError(await meWith(), 401, 'UNAUTHENTICATED');
    });

    test.each([
      ['empty', ''],
      ['scheme only', 'Bearer'],
      ['scheme and space', 'Bearer '],
      ['wrong scheme', 'Basic dXNlcjpwYXNz'],
      ['token without scheme', '<token>'],
      ['two tokens', 'Bearer <token> <token>'],
      ['garbage token', 'Bearer not-a-jwt'],
      ['three garbage segments', 'Bearer aaa.bbb.ccc'],
    ])('malformed header (%s): 401 UNAUTHENTICATED', async (_label, template) => {
      expectError(await meWith(template.replaceAll('<token>', alice.accessToken)), 401, 'UNAUTHENTICATED');
    });

    test('expired token: 401 TOKEN_EXPIRED', async () => {
      const now = Math.floor(Date.now() / 1000);
      const expired = await forge(alice, { iat: now - 7200, exp: now - 3600 });
      expectError(await meWith(bearer(expired)), 401, 'TOKEN_EXPIRED');
    });

    test('tampered payload (sub changed to another user): 401 UNAUTHENTICATED', async () => {
      const [header, payload, signature] = alice.accessToken.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
      expect(claims['sub']).toBe(alice.id);
      const tampered = `${header}.${b64url({ ...claims, sub: bob.id })}.${signature}`;
      const response = await meWith(bearer(tampered));
      expectError(response, 401, 'UNAUTHENTICATED');
      expect(response.body).not.toContain(bob.id);
      expect(response.body).not.toContain(bob.username);
    });

    test('tampered header (kid swapped for another): 401 UNAUTHENTICATED', async () => {
      const [, payload, signature] = alice.accessToken.split('.') as [string, string, string];
      const header = b64url({ alg: 'EdDSA', kid: 'some-other-kid', typ: 'JWT' });
      expectError(await meWith(bearer(`${header}.${payload}.${signature}`)), 401, 'UNAUTHENTICATED');
    });

    test('alg "none" token: 401 UNAUTHENTICATED', async () => {
      const now = Math.floor(Date.now() / 1000);
      const payload = b64url({
        sub: alice.id,
        sid: alice.sessionId,
        iss: h.config.issuer,
        aud: h.config.audience,
        iat: now,
        exp: now + 600,
      });
      for (const alg of ['none', 'None', 'NONE']) {
        const header = b64url({ alg, kid: h.config.signingKey.kid, typ: 'JWT' });
        expectError(await meWith(bearer(`${header}.${payload}.`)), 401, 'UNAUTHENTICATED');
      }
      // The original signature kept under an alg "none" header does not help either.
      const [, , signature] = alice.accessToken.split('.') as [string, string, string];
      const header = b64url({ alg: 'none', kid: h.config.signingKey.kid, typ: 'JWT' });
      expectError(await meWith(bearer(`${header}.${payload}.${signature}`)), 401, 'UNAUTHENTICATED');
    });

    test('signed by a different Ed25519 key carrying the same kid: 401 UNAUTHENTICATED', async () => {
      const attacker = await importSigningJwk(await generateSigningJwk(h.config.signingKey.kid));
      const token = await forge(alice, { key: attacker.privateKey, kid: h.config.signingKey.kid });
      expect(decodeProtectedHeader(token).kid).toBe(h.config.signingKey.kid);
      expectError(await meWith(bearer(token)), 401, 'UNAUTHENTICATED');
    });

    test('unknown kid: 401 UNAUTHENTICATED', async () => {
      const attacker = await importSigningJwk(await generateSigningJwk('attacker-kid'));
      expectError(await meWith(bearer(await forge(alice, { key: attacker.privateKey, kid: 'attacker-kid' }))), 401, 'UNAUTHENTICATED');
      // Even the right key is refused under a kid the service does not publish.
      expectError(await meWith(bearer(await forge(alice, { kid: 'not-published' }))), 401, 'UNAUTHENTICATED');
    });

    test('HS256 token with the public key as the HMAC secret (algorithm confusion): 401 UNAUTHENTICATED', async () => {
      const publicJwk = h.config.signingKey.publicJwk;
      const secrets = [
        new Uint8Array(Buffer.from(publicJwk.x as string, 'base64url')),
        new TextEncoder().encode(publicJwk.x as string),
        new TextEncoder().encode(JSON.stringify(publicJwk)),
      ];
      const now = Math.floor(Date.now() / 1000);
      for (const secret of secrets) {
        const token = await new SignJWT({ sid: alice.sessionId })
          .setProtectedHeader({ alg: 'HS256', kid: h.config.signingKey.kid, typ: 'JWT' })
          .setSubject(alice.id)
          .setIssuer(h.config.issuer)
          .setAudience(h.config.audience)
          .setIssuedAt(now)
          .setExpirationTime(now + 600)
          .sign(secret);
        expectError(await meWith(bearer(token)), 401, 'UNAUTHENTICATED');
      }
    });

    test('wrong issuer: 401 UNAUTHENTICATED', async () => {
      expectError(await meWith(bearer(await forge(alice, { issuer: 'https://evil.example' }))), 401, 'UNAUTHENTICATED');
    });

    test('wrong audience: 401 UNAUTHENTICATED', async () => {
      expectError(await meWith(bearer(await forge(alice, { audience: 'some-other-service' }))), 401, 'UNAUTHENTICATED');
    });

    test('missing session claim: 401 UNAUTHENTICATED', async () => {
      expectError(await meWith(bearer(await forge(alice, { sid: null }))), 401, 'UNAUTHENTICATED');
    });

    test('validly signed, but for a session that does not exist: 401 UNAUTHENTICATED', async () => {
      const token = await forge(alice, { sid: '00000000-0000-4000-8000-000000000000' });
      expectError(await meWith(bearer(token)), 401, 'UNAUTHENTICATED');
    });

    test("validly signed, but pairing one user with another user's session: 401 UNAUTHENTICATED", async () => {
      const token = await forge(alice, { sub: bob.id, sid: alice.sessionId });
      const response = await meWith(bearer(token));
      expectError(response, 401, 'UNAUTHENTICATED');
      expect(response.body).not.toContain(bob.username);
    });

    test("another user's valid token only ever shows that other user", async () => {
      const asAlice = await call(h.app, alice, 'GET', '/v1/me');
      const asBob = await call(h.app, bob, 'GET', '/v1/me');
      expect(asAlice.json<Me>()).toMatchObject({ id: alice.id, username: alice.username });
      expect(asBob.json<Me>()).toMatchObject({ id: bob.id, username: bob.username });
      // Bob's token changes Bob, never Alice.
      const patched = await call(h.app, bob, 'PATCH', '/v1/me', { displayName: 'Bob was here' });
      expect(patched.json<Me>().id).toBe(bob.id);
      expect((await call(h.app, alice, 'GET', '/v1/me')).json<Me>().displayName).toBe(alice.username);
      expect((await call(h.app, bob, 'GET', '/v1/me')).json<Me>().displayName).toBe('Bob was here');
    });
  });

  describe('refresh', () => {
    test('rotates; reusing a rotated token revokes the whole session and announces it', async () => {
      const user = await registerUser(h.app, uniqueName('rot'));

      const first = await refresh(user.refreshToken);
      expect(first.statusCode).toBe(200);
      const t1 = first.json<Tokens>();
      expect(t1.sessionId).toBe(user.sessionId);
      expect(t1.refreshToken).not.toBe(user.refreshToken);
      const me1 = await meWith(bearer(t1.accessToken));
      expect(me1.statusCode).toBe(200);
      expect(me1.json<Me>().id).toBe(user.id);

      // The new refresh token works.
      const second = await refresh(t1.refreshToken);
      expect(second.statusCode).toBe(200);
      const t2 = second.json<Tokens>();
      expect(t2.sessionId).toBe(user.sessionId);
      expect((await meWith(bearer(t2.accessToken))).statusCode).toBe(200);
      expect(revocationsOf(user.sessionId)).toEqual([]);

      // The original, already rotated, token is replayed: theft.
      const revoked = waitForRevocation(user.sessionId);
      expectError(await refresh(user.refreshToken), 401, 'REFRESH_TOKEN_REUSED');

      // The whole session is gone: the newest refresh token and every access token.
      expectError(await refresh(t2.refreshToken), 401, 'SESSION_REVOKED');
      expectError(await meWith(bearer(t2.accessToken)), 401, 'SESSION_REVOKED');
      expectError(await meWith(bearer(user.accessToken)), 401, 'SESSION_REVOKED');

      const event = await revoked;
      expect(event.channel).toBe(`user:{${user.id}}`);
      expect(event.event).toMatchObject({ type: 'session.revoked', sessionId: user.sessionId });
    });

    test('reuse revokes only that session: another session of the same user keeps working', async () => {
      const user = await registerUser(h.app, uniqueName('rot'));
      const other = (await login({ username: user.username, password: PASSWORD })).json<AuthResponse>().tokens;
      const t1 = (await refresh(user.refreshToken)).json<Tokens>();
      expectError(await refresh(user.refreshToken), 401, 'REFRESH_TOKEN_REUSED');
      expectError(await meWith(bearer(t1.accessToken)), 401, 'SESSION_REVOKED');
      expect((await meWith(bearer(other.accessToken))).statusCode).toBe(200);
      expect((await refresh(other.refreshToken)).statusCode).toBe(200);
    });

    test('concurrent refreshes with one token: exactly one gets new tokens, the replays revoke the session', async () => {
      const user = await registerUser(h.app, uniqueName('race'));
      const responses = await Promise.all(Array.from({ length: 8 }, () => refresh(user.refreshToken)));
      const winners = responses.filter((r) => r.statusCode === 200);
      expect(winners).toHaveLength(1);
      const codes = responses.filter((r) => r.statusCode !== 200).map((r) => r.json<ErrorBody>().error.code);
      expect(codes).toHaveLength(7);
      expect(codes).toContain('REFRESH_TOKEN_REUSED');
      for (const code of codes) expect(['REFRESH_TOKEN_REUSED', 'SESSION_REVOKED']).toContain(code);
      // The winner's tokens died with the session.
      expectError(await refresh((winners[0] as InjectResponse).json<Tokens>().refreshToken), 401, 'SESSION_REVOKED');
    });

    test('an unknown refresh token gives 401 REFRESH_TOKEN_INVALID', async () => {
      expectError(await refresh('this-token-was-never-issued'), 401, 'REFRESH_TOKEN_INVALID');
      const user = await registerUser(h.app, uniqueName('inv'));
      // An access token is not a refresh token.
      expectError(await refresh(user.accessToken), 401, 'REFRESH_TOKEN_INVALID');
      // One character off is unknown too, and does not harm the real one.
      const flipped = `${user.refreshToken.slice(0, -1)}${user.refreshToken.endsWith('A') ? 'B' : 'A'}`;
      expectError(await refresh(flipped), 401, 'REFRESH_TOKEN_INVALID');
      expect((await refresh(user.refreshToken)).statusCode).toBe(200);
    });

    test('an expired refresh token gives 401 REFRESH_TOKEN_INVALID', async () => {
      const user = await registerUser(h.app, uniqueName('exp'));
      await h.db.kysely
        .updateTable('refresh_tokens')
        .set({ expires_at: new Date(Date.now() - 1000) })
        .where('token_hash', '=', hashRefreshToken(user.refreshToken))
        .execute();
      expectError(await refresh(user.refreshToken), 401, 'REFRESH_TOKEN_INVALID');
    });

    test('the refresh token is stored hashed, never in clear', async () => {
      const user = await registerUser(h.app, uniqueName('hashrt'));
      const rows = await h.db.kysely
        .selectFrom('refresh_tokens')
        .select('token_hash')
        .where('session_id', '=', user.sessionId)
        .execute();
      expect(rows).toHaveLength(1);
      const stored = Buffer.from(rows[0]?.token_hash as Uint8Array);
      expect(stored.equals(hashRefreshToken(user.refreshToken))).toBe(true);
      expect(stored.toString('utf8')).not.toContain(user.refreshToken);
    });
  });

  describe('logout', () => {
    test('204 revokes the session, announces it, and leaves other sessions alone', async () => {
      const user = await registerUser(h.app, uniqueName('out'));
      const second = (await login({ username: user.username, password: PASSWORD })).json<AuthResponse>().tokens;

      const revoked = waitForRevocation(user.sessionId);
      const response = await call(h.app, user, 'POST', '/v1/auth/logout');
      expect(response.statusCode).toBe(204);
      expect(response.body).toBe('');

      expectError(await call(h.app, user, 'GET', '/v1/me'), 401, 'SESSION_REVOKED');
      expectError(await refresh(user.refreshToken), 401, 'SESSION_REVOKED');

      const event = await revoked;
      expect(event.channel).toBe(`user:{${user.id}}`);
      expect(event.event).toMatchObject({ type: 'session.revoked', sessionId: user.sessionId });
      expect(revocationsOf(second.sessionId)).toEqual([]);

      // The other session of the same user keeps working.
      const me = await meWith(bearer(second.accessToken));
      expect(me.statusCode).toBe(200);
      expect(me.json<Me>().id).toBe(user.id);
      expect((await refresh(second.refreshToken)).statusCode).toBe(200);
    });

    test('needs a valid token, and a second logout with the revoked one is refused', async () => {
      expectError(await call(h.app, null, 'POST', '/v1/auth/logout'), 401, 'UNAUTHENTICATED');
      const user = await registerUser(h.app, uniqueName('out'));
      expect((await call(h.app, user, 'POST', '/v1/auth/logout')).statusCode).toBe(204);
      expectError(await call(h.app, user, 'POST', '/v1/auth/logout'), 401, 'SESSION_REVOKED');
    });
  });

  describe('login rate limit', () => {
    let limited: MessageHarness;
    beforeAll(async () => {
      limited = await startMessageHarness({ loginRateLimit: { max: 3, windowSeconds: 60 } }, { backend });
    }, HARNESS_START_TIMEOUT_MS);
    afterAll(async () => limited.close());

    test('the 4th attempt for one username from one IP gets 429 RATE_LIMITED, even with the right password', async () => {
      const victim = await registerUser(limited.app, uniqueName('victim'));
      const bystander = await registerUser(limited.app, uniqueName('bystander'));
      const opts = { app: limited.app };

      for (let attempt = 1; attempt <= 3; attempt += 1) {
        expectError(await login({ username: victim.username, password: `wrong guess ${attempt}` }, opts), 401, 'INVALID_CREDENTIALS');
      }
      const fourth = await login({ username: victim.username, password: PASSWORD }, opts);
      expectError(fourth, 429, 'RATE_LIMITED');
      expect(fourth.body).not.toContain('accessToken');
      // Changing the case of the username does not reset the counter.
      expectError(await login({ username: victim.username.toUpperCase(), password: PASSWORD }, opts), 429, 'RATE_LIMITED');

      // A different username from the same IP is not affected.
      const other = await login({ username: bystander.username, password: PASSWORD }, opts);
      expect(other.statusCode).toBe(200);
      expect(other.json<AuthResponse>().user.id).toBe(bystander.id);

      // Nor is the same username from another IP: an attacker cannot lock the owner out.
      const elsewhere = await login({ username: victim.username, password: PASSWORD }, { ...opts, remoteAddress: '203.0.113.7' });
      expect(elsewhere.statusCode).toBe(200);
      expect(elsewhere.json<AuthResponse>().user.id).toBe(victim.id);
    });
  });

  describe('login rate limit per IP', () => {
    let limited: MessageHarness;
    beforeAll(async () => {
      limited = await startMessageHarness({ loginRateLimitPerIp: { max: 3, windowSeconds: 60 } }, { backend });
    }, HARNESS_START_TIMEOUT_MS);
    afterAll(async () => limited.close());

    test('one address cycling usernames is stopped after its budget; another address is not', async () => {
      const opts = { app: limited.app, remoteAddress: '198.51.100.9' };
      for (let attempt = 1; attempt <= 3; attempt += 1) {
        expectError(
          await login({ username: uniqueName('spray'), password: 'Winter2026!' }, opts),
          401,
          'INVALID_CREDENTIALS',
        );
      }
      expectError(await login({ username: uniqueName('spray'), password: 'Winter2026!' }, opts), 429, 'RATE_LIMITED');

      const owner = await registerUser(limited.app, uniqueName('owner'));
      const elsewhere = await login({ username: owner.username, password: PASSWORD }, { app: limited.app, remoteAddress: '198.51.100.10' });
      expect(elsewhere.statusCode).toBe(200);
    });
  });

  describe('refresh retried after a lost reply (grace period)', () => {
    let lenient: MessageHarness;
    beforeAll(async () => {
      lenient = await startMessageHarness({ refreshReuseGraceSeconds: 30 }, { backend });
    }, HARNESS_START_TIMEOUT_MS);
    afterAll(async () => lenient.close());

    const refreshOn = (token: string) =>
      lenient.app.inject({ method: 'POST', url: '/v1/auth/refresh', payload: { refreshToken: token } });

    test('the same token again, before its successor was used: a fresh pair; the lost successor stops working', async () => {
      const user = await registerUser(lenient.app);
      const lost = await refreshOn(user.refreshToken); // the reply that never reached the client
      expect(lost.statusCode).toBe(200);
      const retried = await refreshOn(user.refreshToken);
      expect(retried.statusCode).toBe(200);
      const fresh = retried.json<Tokens>();
      expect(fresh.sessionId).toBe(user.sessionId);
      expect(fresh.refreshToken).not.toBe(lost.json<Tokens>().refreshToken);

      expectError(await refreshOn(lost.json<Tokens>().refreshToken), 401, 'REFRESH_TOKEN_INVALID');
      const next = await refreshOn(fresh.refreshToken);
      expect(next.statusCode).toBe(200);
    });

    test('once the successor has been used, presenting the old token again is reuse: the session is revoked', async () => {
      const user = await registerUser(lenient.app);
      const first = await refreshOn(user.refreshToken);
      expect((await refreshOn(first.json<Tokens>().refreshToken)).statusCode).toBe(200);
      expectError(await refreshOn(user.refreshToken), 401, 'REFRESH_TOKEN_REUSED');
      const me = await lenient.app.inject({ method: 'GET', url: '/v1/me', headers: user.headers });
      expectError(me, 401, 'SESSION_REVOKED');
    });

    test('after the grace period, presenting the old token again is reuse', async () => {
      const user = await registerUser(lenient.app);
      expect((await refreshOn(user.refreshToken)).statusCode).toBe(200);
      await lenient.db.kysely
        .updateTable('refresh_tokens')
        .set({ rotated_at: new Date(Date.now() - 60_000) })
        .where('session_id', '=', user.sessionId)
        .where('rotated_at', 'is not', null)
        .execute();
      expectError(await refreshOn(user.refreshToken), 401, 'REFRESH_TOKEN_REUSED');
    });
  });
});
