import { generateKeyPairSync } from 'node:crypto'
import fastifyCors from '@fastify/cors'
import fastifyJwt from '@fastify/jwt'
import fastifyWebsocket from '@fastify/websocket'
import { createSigner } from 'fast-jwt'
import Fastify from 'fastify'
import t from 'tap'
import WebSocket from 'ws'
import realtime from '../src/index.js'
import { buildApp, connect, logCapture, refused, SECRET, sign, wsUrl } from './helpers/index.js'

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
const now = () => Math.floor(Date.now() / 1000)
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })

const badTokens: Array<[string, string | null, string]> = [
  ['no token at all', null, 'Missing token'],
  ['garbage', 'not-a-jwt', 'Malformed token'],
  ['a token signed with another secret', sign('alice', {}, 'another-secret-that-is-long-enough-as-well'), 'Invalid token'],
  ['an alg:none token', `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'alice', exp: now() + 60 })}.`, 'Invalid token'],
  [
    'an RS256 token against an HS256 secret (key confusion)',
    createSigner({ key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, algorithm: 'RS256' })({ sub: 'alice' }),
    'Invalid token'
  ],
  ['an expired token', sign('alice', { exp: now() - 10 }), 'Token expired'],
  ['a token that is not valid yet', sign('alice', { nbf: now() + 600 }), 'Token not yet valid'],
  ['a token without sub', sign(undefined), 'Token has no subject (sub)']
]

t.test('the upgrade is refused with HTTP 401 and a JSON body, and no connection is made', async (t) => {
  const app = await buildApp(t)
  for (const [name, token, message] of badTokens) {
    const res = await refused(app, 'alice', { token })
    t.equal(res.status, 401, name)
    t.same(res.body, { statusCode: 401, code: 'FST_REALTIME_UNAUTHORIZED', error: 'Unauthorized', message }, name)
    t.match(res.headers['content-type'], /application\/json/)
  }
  t.equal(app.realtime.stats().connections, 0)
})

t.test('a malformed Authorization header is refused with 401', async (t) => {
  const app = await buildApp(t)
  const res = await refused(app, 'alice', { token: null, headers: { authorization: 'Basic dXNlcjpwYXNz' } })
  t.equal(res.status, 401)
  t.match(res.body.message, /Bearer <token>/)
})

t.test('a bad token in the subprotocol is refused with 401 too', async (t) => {
  const app = await buildApp(t)
  const res = await refused(app, 'alice', { protocols: ['realtime.v1', 'bearer.nope'] })
  t.equal(res.status, 401)
  t.equal(res.body.message, 'Malformed token')
})

t.test('a token in the subprotocol is accepted; the server selects realtime.v1 and never echoes the token', async (t) => {
  const app = await buildApp(t)
  const token = sign('bob')
  const ws = new WebSocket(wsUrl(app), ['realtime.v1', `bearer.${token}`])
  const first = new Promise<any>((resolve) => ws.once('message', (d) => resolve(JSON.parse(String(d)))))
  const selected = await new Promise<string | undefined>((resolve, reject) => {
    ws.once('upgrade', (res) => resolve(res.headers['sec-websocket-protocol'] as string | undefined))
    ws.once('error', reject)
  })
  t.equal(selected, 'realtime.v1')
  const ready = await first
  t.equal(ready.type, 'ready')
  t.equal(ready.data.userId, 'bob')
  t.equal(ws.protocol, 'realtime.v1')
  ws.close()
})

t.test('offering subprotocols without realtime.v1 is refused with 400', async (t) => {
  const app = await buildApp(t)
  const res = await refused(app, 'alice', { protocols: [`bearer.${sign('alice')}`] })
  t.equal(res.status, 400)
  t.equal(res.body.code, 'FST_REALTIME_BAD_SUBPROTOCOL')
  t.match(res.body.message, /realtime\.v1/)
})

t.test('?token= is refused unless allowQueryToken is set', async (t) => {
  const app = await buildApp(t)
  const res = await refused(app, 'alice', { query: `?token=${sign('alice')}` })
  t.equal(res.status, 401)
  t.match(res.body.message, /query string are disabled/)
})

t.test('?token= works with allowQueryToken, and no log line holds the token', async (t) => {
  const logs = logCapture('trace')
  const app = await buildApp(t, { allowQueryToken: true }, { fastify: logs.fastify })
  const token = sign('carol')
  const client = await connect(app, 'carol', { query: `?token=${token}&x=1` })
  const ready = client.ready
  t.equal(ready.data.userId, 'carol')
  await client.close()
  const incoming = logs.records().find((r) => r.msg === 'incoming request') as { req: { url: string } }
  t.equal(incoming.req.url, '/ws?x=1', 'the logged URL keeps other parameters and loses the token')
  const signature = token.split('.')[2] as string
  t.notOk(
    logs.lines.some((l) => l.includes(signature)),
    'no log line contains the token signature'
  )
  t.ok(logs.records().some((r) => r.msg === 'realtime connection opened' && r.userId === 'carol'))
})

t.test('no token reaches a log line, at trace level, on any failure path', async (t) => {
  const logs = logCapture('trace')
  const app = await buildApp(t, { allowQueryToken: true }, { fastify: logs.fastify })
  const tokens: string[] = []
  for (const [, token] of badTokens) {
    if (token === null) continue
    tokens.push(token)
    await refused(app, 'alice', { token })
    await refused(app, 'alice', { protocols: ['realtime.v1', `bearer.${token}`] })
    await refused(app, 'alice', { query: `?token=${token}` })
  }
  const good = sign('alice')
  tokens.push(good)
  await refused(app, 'alice', { token: good, headers: { origin: 'https://evil.example' } })
  const client = await connect(app, 'alice', { token: good })
  client.send({ type: 'auth', id: 'a', data: { token: `${good}x` } })
  await client.next('error')
  await client.close()
  const all = logs.lines.join('\n')
  t.ok(logs.records().filter((r) => r.msg === 'realtime authentication failed').length >= 20, 'the failures were logged')
  for (const token of tokens) {
    const signature = token.split('.')[2] ?? ''
    t.notOk(all.includes(token), 'the whole token is in no log line')
    if (signature.length > 0) t.notOk(all.includes(signature), 'the signature is in no log line')
  }
})

t.test('a disallowed Origin is refused with 403; allowed and absent origins connect', async (t) => {
  const app = await buildApp(t)
  const res = await refused(app, 'alice', { headers: { origin: 'https://evil.example' } })
  t.equal(res.status, 403)
  t.same(res.body, {
    statusCode: 403,
    code: 'FST_REALTIME_FORBIDDEN_ORIGIN',
    error: 'Forbidden',
    message: 'Origin https://evil.example is not allowed'
  })
  for (const origin of ['http://localhost:3000', 'http://localhost:8000']) {
    const client = await connect(app, 'alice', { headers: { origin } })
    t.equal(client.ready.type, 'ready', origin)
    await client.close()
  }
  const noOrigin = await connect(app)
  t.equal(noOrigin.ready.type, 'ready', 'a client without Origin (not a browser) connects')
  await noOrigin.close()
})

t.test("origins come from cors.origin, else CORS_ORIGINS, and the app's own routes get no CORS headers", async (t) => {
  const saved = process.env.CORS_ORIGINS
  t.teardown(() => {
    if (saved === undefined) delete process.env.CORS_ORIGINS
    else process.env.CORS_ORIGINS = saved
  })
  process.env.CORS_ORIGINS = 'https://a.example, https://b.example'
  const fromEnv = await buildApp(t, {}, { before: (app) => app.get('/hello', async () => ({ ok: true })) })
  t.equal((await refused(fromEnv, 'alice', { headers: { origin: 'http://localhost:3000' } })).status, 403)
  const client = await connect(fromEnv, 'alice', { headers: { origin: 'https://b.example' } })
  await client.close()
  const hello = await fromEnv.inject({ url: '/hello', headers: { origin: 'https://a.example' } })
  t.equal(hello.headers['access-control-allow-origin'], undefined, 'an allowed origin gets no CORS headers from a route of the app')
  t.equal(hello.headers['access-control-allow-credentials'], undefined)

  const fromOption = await buildApp(t, { cors: { origin: 'https://app.example' } })
  t.equal((await refused(fromOption, 'alice', { headers: { origin: 'https://a.example' } })).status, 403)
  const ok = await connect(fromOption, 'alice', { headers: { origin: 'https://app.example' } })
  await ok.close()

  const any = await buildApp(t, { cors: { origin: '*' } })
  const fromAnywhere = await connect(any, 'alice', { headers: { origin: 'https://anything.example' } })
  await fromAnywhere.close()
})

t.test('cors: false keeps the origin check but leaves CORS to the app', async (t) => {
  const app = await buildApp(t, { cors: false }, { before: (app) => app.get('/hello', async () => 'hi') })
  t.equal(app.hasPlugin('@fastify/cors'), false)
  t.equal((await refused(app, 'alice', { headers: { origin: 'https://evil.example' } })).status, 403)
})

t.test('plugins the app registered first are reused, not registered again', async (t) => {
  const app = Fastify()
  await app.register(fastifyJwt, { secret: SECRET })
  await app.register(fastifyCors, { origin: ['https://host.example'] })
  await app.register(fastifyWebsocket)
  app.get('/echo', { websocket: true }, (socket) => {
    socket.on('message', (m: Buffer) => socket.send(m.toString()))
  })
  await app.register(realtime, { cors: { origin: ['https://host.example'] } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())

  const client = await connect(app, 'dave', { protocols: ['realtime.v1', `bearer.${sign('dave')}`] })
  t.equal(client.ws.protocol, 'realtime.v1', 'our path selects realtime.v1 on the host websocket server')
  t.equal(client.ready.data.userId, 'dave', 'the token is verified by the host @fastify/jwt')
  await client.close()

  const echo = new WebSocket(wsUrl(app, '/echo'), ['chat', 'superchat'])
  await new Promise((resolve) => echo.once('open', resolve))
  t.equal(echo.protocol, 'chat', 'other websocket routes keep the default protocol choice')
  echo.close()
})

t.test('a host websocket server with its own protocol choice keeps it for other routes', async (t) => {
  const app = Fastify()
  await app.register(fastifyWebsocket, { options: { handleProtocols: () => 'custom' } })
  app.get('/other', { websocket: true }, (socket) => socket.close())
  await app.register(realtime, { jwt: { secret: SECRET } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  const other = new WebSocket(wsUrl(app, '/other'), ['custom', 'x'])
  await new Promise((resolve) => other.once('open', resolve))
  t.equal(other.protocol, 'custom')
  other.close()
  const client = await connect(app, 'erin', { protocols: ['realtime.v1', `bearer.${sign('erin')}`] })
  t.equal(client.ws.protocol, 'realtime.v1')
  await client.close()
})

t.test('the path option moves the endpoint', async (t) => {
  const app = await buildApp(t, { path: '/realtime' })
  const client = await connect(app, 'alice', { path: '/realtime' })
  t.equal(client.ready.type, 'ready')
  await client.close()
  const res = await app.inject({ url: '/ws' })
  t.equal(res.statusCode, 404)
})

t.test('a plain GET on the endpoint with a valid token is answered 404, not upgraded', async (t) => {
  const app = await buildApp(t)
  const res = await app.inject({ url: '/ws', headers: { authorization: `Bearer ${sign('alice')}` } })
  t.equal(res.statusCode, 404)
})

t.test('a plain HTTP request to the endpoint with ?token= does not log the token either', async (t) => {
  const logs = logCapture('trace')
  const app = await buildApp(t, { allowQueryToken: true }, { fastify: logs.fastify })
  const token = sign('alice')
  const res = await fetch(`${wsUrl(app).replace('ws:', 'http:')}?token=${token}`)
  t.equal(res.status, 404)
  t.notOk(logs.lines.join('\n').includes(token.split('.')[2] as string))
  const other = await fetch(`${wsUrl(app, '/elsewhere').replace('ws:', 'http:')}?token=abc`)
  t.equal(other.status, 404)
  t.ok(
    logs.lines.some((l) => l.includes('/elsewhere?token=abc')),
    'other paths are left alone'
  )
})

t.test('a query string without a token is left as it is', async (t) => {
  const logs = logCapture('info')
  const app = await buildApp(t, {}, { fastify: logs.fastify })
  const client = await connect(app, 'alice', { query: '?client=web', headers: { authorization: `Bearer ${sign('alice')}` } })
  await client.close()
  t.ok(logs.records().some((r) => (r.req as { url?: string } | undefined)?.url === '/ws?client=web'))
})

t.test('a Buffer secret and an RS256 key pair work as jwt secrets', async (t) => {
  const bufferApp = await buildApp(t, { jwt: { secret: Buffer.from(SECRET) } })
  const a = await connect(bufferApp, 'alice')
  t.equal(a.ready.data.userId, 'alice')
  await a.close()
  const { privateKey: priv, publicKey: pub } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const keys = {
    private: priv.export({ type: 'pkcs8', format: 'pem' }) as string,
    public: pub.export({ type: 'spki', format: 'pem' }) as string
  }
  const rsaApp = await buildApp(t, { jwt: { secret: keys, sign: { algorithm: 'RS256' } } })
  const token = rsaApp.jwt.sign({ sub: 'rsa-user' })
  const b = await connect(rsaApp, 'rsa-user', { token })
  t.equal(b.ready.data.userId, 'rsa-user')
  await b.close()
  const hs = await refused(rsaApp, 'alice', { token: sign('alice') })
  t.equal(hs.status, 401, 'an HS256 token is refused by an RS256 server')
})

t.test('a numeric sub is accepted as a string user id', async (t) => {
  const app = await buildApp(t)
  const client = await connect(app, 'x', { token: sign(undefined, { sub: 42 }) })
  t.equal(client.ready.data.userId, '42')
})

t.test('with cors.origin "*" our routes answer CORS for any origin but never with credentials', async (t) => {
  const app = await buildApp(t, { cors: { origin: '*' }, asyncapi: true }, { before: (app) => app.get('/me', async () => ({ me: 1 })) })
  const doc = await app.inject({ url: '/ws/asyncapi.json', headers: { origin: 'https://evil.example', cookie: 'session=1' } })
  t.equal(doc.headers['access-control-allow-origin'], '*')
  t.equal(doc.headers['access-control-allow-credentials'], undefined)
  const me = await app.inject({ url: '/me', headers: { origin: 'https://evil.example' } })
  t.equal(me.headers['access-control-allow-origin'], undefined, 'the app route is left alone')
})

t.test('spellings of the path that route to the endpoint hide ?token= as well', async (t) => {
  const logs = logCapture('trace')
  const app = await buildApp(t, { allowQueryToken: true }, { fastify: { ...logs.fastify, ignoreTrailingSlash: true } as never })
  const token = sign('alice')
  const signature = token.split('.')[2] as string
  for (const path of ['/w%73', '/ws/', '//ws', '/WS', '/w%ZZ']) {
    await fetch(`${wsUrl(app).replace('ws:', 'http:').replace('/ws', path)}?token=${token}`)
  }
  const encoded = await connect(app, 'alice', { path: '/w%73', query: `?token=${token}` })
  t.equal(encoded.ready.data.userId, 'alice', 'an encoded spelling still connects')
  await encoded.close()
  t.notOk(logs.lines.join('\n').includes(signature), 'no spelling put the token in a log line')
})

t.test('the server never selects a bearer.<jwt> subprotocol, on its path or any other', async (t) => {
  const app = await buildApp(
    t,
    {},
    {
      before: async (app) => {
        await app.register(fastifyWebsocket)
        app.get('/other', { websocket: true }, (socket) => socket.close())
      }
    }
  )
  const token = sign('alice')
  const mine = await connect(app, 'alice', { path: '/w%73', protocols: [`bearer.${token}`, 'realtime.v1'] })
  t.equal(mine.ws.protocol, 'realtime.v1', 'on the endpoint, whatever the order offered')
  await mine.close()
  const other = new WebSocket(wsUrl(app, '/other'), [`bearer.${token}`])
  const failure = await new Promise<string>((resolve) => {
    other.once('error', (err) => resolve(err.message))
    other.once('open', () => resolve(`opened with ${other.protocol}`))
  })
  t.match(failure, /no subprotocol/, 'elsewhere a lone bearer offer is not echoed')
})

t.test("an app's own subprotocol choice for other routes is refused when it would echo a bearer token", async (t) => {
  const app = await buildApp(
    t,
    {},
    {
      before: async (app) => {
        await app.register(fastifyWebsocket, { options: { handleProtocols: (protocols: Set<string>) => [...protocols][0] as string } })
        app.get('/mine', { websocket: true }, (socket) => socket.close())
      }
    }
  )
  const other = new WebSocket(wsUrl(app, '/mine'), [`bearer.${sign('alice')}`, 'chat'])
  const failure = await new Promise<string>((resolve) => {
    other.once('error', (err) => resolve(err.message))
    other.once('open', () => resolve(`opened with ${other.protocol}`))
  })
  t.match(failure, /no subprotocol/)
})
