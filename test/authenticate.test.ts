// Any way in: an authenticate hook (API keys, sessions), a JWT in a cookie, RS256 keys from a JWKS endpoint.
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import fastifyCookie from '@fastify/cookie'
import { createSigner } from 'fast-jwt'
import type { FastifyRequest } from 'fastify'
import buildGetJwks from 'get-jwks'
import t from 'tap'
import { buildApp, connect, logCapture, refused, SECRET, sign } from './helpers/index.js'

const ORIGIN = 'http://localhost:5173'

t.test('an API key checked by authenticate opens a connection; a wrong or missing key is refused 401', async (t) => {
  const keys = new Map([['key-of-bob', { sub: 'bob', plan: 'pro' }]])
  const app = await buildApp(t, {
    jwt: undefined,
    authenticate: async (request) => keys.get(String(request.headers['x-api-key'])) ?? null
  })
  const client = await connect(app, 'bob', { token: null, headers: { 'x-api-key': 'key-of-bob' } })
  t.equal(client.ready.data.userId, 'bob')
  const ctx = app.realtime.connection(client.ready.data.connectionId)
  t.equal(ctx?.user.plan, 'pro', 'what authenticate returned is the connection user')
  for (const headers of [{ 'x-api-key': 'wrong' }, {}] as Record<string, string>[]) {
    const res = await refused(app, 'bob', { token: null, headers })
    t.equal(res.status, 401)
    t.same(res.body, { statusCode: 401, code: 'FST_REALTIME_UNAUTHORIZED', error: 'Unauthorized', message: 'Not authenticated' })
  }
  const token = await client.call({ type: 'auth', data: { token: sign('bob') } })
  t.equal(token.type, 'error', 'without JWT there is no token to refresh')
  t.match(token.data.message, /authenticate hook/)
})

t.test('a session cookie read by authenticate opens a connection from an allowed page', async (t) => {
  const sessions = new Map<string, { sub: string }>()
  const app = await buildApp(
    t,
    {
      jwt: undefined,
      authenticate: (request: FastifyRequest) => {
        const sid = request.cookies.sid
        return sid === undefined ? null : (sessions.get(sid) ?? null)
      },
      subscriptions: (user) => [`user:${user.sub}`]
    },
    {
      before: (app) => {
        app.register(fastifyCookie)
        app.post('/login', async (_request, reply) => {
          const sid = randomUUID()
          sessions.set(sid, { sub: 'carol' })
          return reply.setCookie('sid', sid, { httpOnly: true, path: '/' }).send({ ok: true })
        })
      }
    }
  )
  const login = await app.inject({ method: 'POST', url: '/login' })
  const sid = login.cookies.find((c) => c.name === 'sid')?.value as string
  const client = await connect(app, 'carol', { token: null, headers: { cookie: `sid=${sid}`, origin: ORIGIN } })
  t.equal(client.ready.data.userId, 'carol')
  const sub = await client.next('subscribed')
  t.equal(sub.room, 'user:carol')
  await app.realtime.emit({ user: 'carol' }, { type: 'agent:thought', data: { runId: 'r', content: 'hello carol' } })
  t.equal((await client.next('agent:thought')).data.content, 'hello carol')
  t.equal((await refused(app, 'carol', { token: null, headers: { cookie: 'sid=forged', origin: ORIGIN } })).status, 401)
})

t.test('authenticate may refuse with its own 4xx; a failure is logged and answered 500', async (t) => {
  const logs = logCapture('info')
  const app = await buildApp(
    t,
    {
      jwt: undefined,
      authenticate: (request) => {
        const how = request.headers['x-case']
        if (how === 'banned') throw Object.assign(new Error('Account suspended'), { statusCode: 403 })
        if (how === 'nosub') return { name: 'no id' } as never
        throw new Error('session store is down')
      }
    },
    { fastify: logs.fastify }
  )
  const banned = await refused(app, 'x', { token: null, headers: { 'x-case': 'banned' } })
  t.equal(banned.status, 403)
  t.equal(banned.body.message, 'Account suspended')
  for (const how of ['down', 'nosub']) {
    const res = await refused(app, 'x', { token: null, headers: { 'x-case': how } })
    t.equal(res.status, 500, how)
    t.same(res.body, {
      statusCode: 500,
      code: 'FST_REALTIME_AUTHENTICATE_FAILED',
      error: 'Internal Server Error',
      message: 'Authentication failed'
    })
  }
  const msgs = logs.records().map((r) => String(r.msg))
  t.ok(msgs.includes('realtime authenticate hook failed'))
  t.ok(msgs.includes('realtime authenticate hook returned no user id'))
})

t.test('a JWT in a cookie connects from an allowed page; a wrong cookie is 401, a foreign or missing Origin 403', async (t) => {
  const app = await buildApp(t, { jwt: { secret: SECRET, cookie: 'token' } })
  t.ok(app.hasDecorator('parseCookie'), 'the plugin registered @fastify/cookie')
  const good = `token=${sign('dora')}`
  const client = await connect(app, 'dora', { token: null, headers: { cookie: good, origin: ORIGIN } })
  t.equal(client.ready.data.userId, 'dora')

  const wrong = await refused(app, 'dora', { token: null, headers: { cookie: 'token=not-a-jwt', origin: ORIGIN } })
  t.equal(wrong.status, 401)
  t.equal(wrong.body.message, 'Malformed token')
  const foreign = await refused(app, 'dora', { token: null, headers: { cookie: good, origin: 'https://evil.example' } })
  t.equal(foreign.status, 403)
  t.equal(foreign.body.code, 'FST_REALTIME_FORBIDDEN_ORIGIN')
  const none = await refused(app, 'dora', { token: null, headers: { cookie: good } })
  t.equal(none.status, 403, 'a cookie token without an Origin is refused')
  t.equal(none.body.message, 'Origin (none: a cookie token needs one) is not allowed')
  const header = await connect(app, 'erin')
  t.equal(header.ready.data.userId, 'erin', 'a header token still works without an Origin')
  // The client's plain GET that finds out why upgrades fail: same-origin, so the browser sends no Origin, only
  // Sec-Fetch-Site. Its answer must be the token's, not the missing Origin's.
  const address = app.server.address() as { port: number }
  const ask = (cookie: string, site: string) =>
    fetch(`http://127.0.0.1:${address.port}/ws`, { headers: { cookie, 'sec-fetch-site': site } })
  const expired = await ask('token=not-a-jwt', 'same-origin')
  t.equal(expired.status, 401, 'a bad cookie token seen from the same origin is a 401')
  t.equal((await expired.json()).message, 'Malformed token')
  t.equal((await ask(good, 'cross-site')).status, 403, 'from another site, still a 403')
})

t.test('an app that registered @fastify/cookie and @fastify/jwt keeps them; jwt.cookie alone names the cookie', async (t) => {
  const app = await buildApp(
    t,
    { jwt: { cookie: 'auth' } },
    {
      before: async (app) => {
        await app.register(fastifyCookie)
        await app.register((await import('@fastify/jwt')).default, { secret: SECRET })
      }
    }
  )
  const client = await connect(app, 'fay', { token: null, headers: { cookie: `auth=${sign('fay')}`, origin: ORIGIN } })
  t.equal(client.ready.data.userId, 'fay')
})

t.test('RS256 tokens are verified with keys from a JWKS endpoint (get-jwks)', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'key-1', alg: 'RS256', use: 'sig' }
  let getJwks: ReturnType<typeof buildGetJwks> | undefined
  const app = await buildApp(
    t,
    {
      jwt: {
        secret: (_request, token) =>
          (getJwks as ReturnType<typeof buildGetJwks>).getPublicKey({
            kid: token.header.kid,
            alg: token.header.alg,
            domain: String(token.payload.iss)
          }),
        verify: { algorithms: ['RS256'] }
      }
    },
    { before: (app) => app.get('/.well-known/jwks.json', async () => ({ keys: [jwk] })) }
  )
  const issuer = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  // Only this issuer's key set is ever fetched: the issuer of a token not yet verified must not pick the URL.
  getJwks = buildGetJwks({ providerDiscovery: false, issuersWhitelist: [issuer] })
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  const rs256 = (sub: string, kid = 'key-1') => createSigner({ key: pem, algorithm: 'RS256', kid, iss: issuer, expiresIn: 60_000 })({ sub })

  const client = await connect(app, 'gil', { token: rs256('gil') })
  t.equal(client.ready.data.userId, 'gil')
  const refreshed = await client.call({ type: 'auth', data: { token: rs256('gil') } })
  t.equal(refreshed.type, 'ack', 'a refresh is verified with the key set too')
  const unknownKid = await refused(app, 'gil', { token: rs256('gil', 'key-2') })
  t.equal(unknownKid.status, 401)
  const hs256 = await refused(app, 'gil', { token: sign('gil', { iss: issuer }) })
  t.equal(hs256.status, 401, 'an HS256 token is refused')
})
