// Origins as strings, RegExps and functions; CORS on our own routes only; clear errors for plugins registered late.
import fastifyCors from '@fastify/cors'
import fastifyJwt from '@fastify/jwt'
import fastifyWebsocket from '@fastify/websocket'
import Fastify from 'fastify'
import t from 'tap'
import { loadIoredis } from '../src/adapters/ioredis.js'
import realtime from '../src/index.js'
import { buildApp, connect, logCapture, refused, SECRET } from './helpers/index.js'

async function connects(app: Parameters<typeof connect>[0], origin: string): Promise<boolean> {
  try {
    const client = await connect(app, 'alice', { headers: { origin } })
    await client.close()
    return true
  } catch (err) {
    if ((err as Error).message === 'HTTP 403') return false
    throw err
  }
}

t.test('by default pages of a local dev server connect, on any port of localhost or 127.0.0.1', async (t) => {
  const saved = process.env.CORS_ORIGINS
  delete process.env.CORS_ORIGINS
  t.teardown(() => {
    if (saved !== undefined) process.env.CORS_ORIGINS = saved
  })
  const app = await buildApp(t)
  for (const origin of ['http://localhost:5173', 'http://127.0.0.1:8080', 'http://localhost']) t.ok(await connects(app, origin), origin)
  for (const origin of ['https://app.example', 'http://localhost.evil.example', 'http://127.0.0.1.evil.example:80']) {
    t.notOk(await connects(app, origin), origin)
  }
})

t.test('cors.origin takes RegExps and strings together, and a function of the origin', async (t) => {
  const listed = await buildApp(t, { cors: { origin: ['https://app.example', /^https:\/\/[a-z]+\.preview\.example$/] } })
  t.ok(await connects(listed, 'https://app.example'))
  t.ok(await connects(listed, 'https://pr.preview.example'))
  t.notOk(await connects(listed, 'https://x.preview.example.evil'))

  const logs = logCapture('info')
  const asked: string[] = []
  const fn = await buildApp(
    t,
    {
      cors: {
        origin: async (origin) => {
          asked.push(origin)
          if (origin === 'https://broken.example') throw new Error('lookup failed')
          return origin.endsWith('.tenant.example')
        }
      }
    },
    { fastify: logs.fastify }
  )
  t.ok(await connects(fn, 'https://acme.tenant.example'))
  t.notOk(await connects(fn, 'https://other.example'))
  t.notOk(await connects(fn, 'https://broken.example'), 'a throwing origin function refuses')
  t.same(asked, ['https://acme.tenant.example', 'https://other.example', 'https://broken.example'])
  t.ok(logs.records().some((r) => r.msg === 'realtime origin check failed; origin refused'))
  const single = await buildApp(t, { cors: { origin: /^https:\/\/only\.example$/ } })
  t.ok(await connects(single, 'https://only.example'))
})

t.test('the app routes answer no CORS headers; our AsyncAPI route answers CORS for allowed origins only', async (t) => {
  const app = await buildApp(
    t,
    { cors: { origin: 'https://app.example' }, asyncapi: true },
    { before: (app) => app.get('/api/private', async () => ({ secret: 1 })) }
  )
  t.equal(app.hasPlugin('@fastify/cors'), false, 'no CORS plugin is registered')
  for (const origin of ['https://app.example', 'https://evil.example']) {
    const res = await app.inject({ url: '/api/private', headers: { origin } })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['access-control-allow-origin'], undefined, `no CORS on the app route for ${origin}`)
    const pre = await app.inject({ method: 'OPTIONS', url: '/api/private', headers: { origin, 'access-control-request-method': 'GET' } })
    t.equal(pre.headers['access-control-allow-origin'], undefined)
  }
  const doc = await app.inject({ url: '/ws/asyncapi.json', headers: { origin: 'https://app.example' } })
  t.equal(doc.headers['access-control-allow-origin'], 'https://app.example')
  t.equal(doc.headers['access-control-allow-credentials'], 'true')
  t.match(doc.headers.vary, /Origin/)
  const evil = await app.inject({ url: '/ws/asyncapi.json', headers: { origin: 'https://evil.example' } })
  t.equal(evil.statusCode, 200)
  t.equal(evil.headers['access-control-allow-origin'], undefined)
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/ws/asyncapi.json',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' }
  })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers['access-control-allow-origin'], 'https://app.example')
  t.equal(preflight.headers['access-control-allow-methods'], 'GET')
  const refusedPreflight = await app.inject({ method: 'OPTIONS', url: '/ws/asyncapi.json', headers: { origin: 'https://evil.example' } })
  t.equal(refusedPreflight.statusCode, 204)
  t.equal(refusedPreflight.headers['access-control-allow-origin'], undefined)
})

t.test('an origin function that throws refuses CORS on our routes, and is logged', async (t) => {
  const logs = logCapture('error')
  const app = await buildApp(
    t,
    {
      asyncapi: true,
      cors: {
        origin: (origin) => {
          if (origin === 'https://broken.example') throw new Error('lookup failed')
          return true
        }
      }
    },
    { fastify: logs.fastify }
  )
  const ok = await app.inject({ url: '/ws/asyncapi.json', headers: { origin: 'https://fine.example' } })
  t.equal(ok.headers['access-control-allow-origin'], 'https://fine.example')
  const broken = await app.inject({ url: '/ws/asyncapi.json', headers: { origin: 'https://broken.example' } })
  t.equal(broken.statusCode, 200)
  t.equal(broken.headers['access-control-allow-origin'], undefined)
  t.ok(logs.records().some((r) => r.msg === 'realtime origin check failed; origin refused'))
})

t.test('with cors: false our routes send no CORS headers and the origin check stays', async (t) => {
  const app = await buildApp(t, { cors: false, asyncapi: true })
  const doc = await app.inject({ url: '/ws/asyncapi.json', headers: { origin: 'http://localhost:3000' } })
  t.equal(doc.headers['access-control-allow-origin'], undefined)
  t.equal((await refused(app, 'alice', { headers: { origin: 'https://evil.example' } })).status, 403)
})

t.test("the app's own @fastify/cors keeps its policy on its routes, and ours keep theirs", async (t) => {
  const app = await buildApp(
    t,
    { cors: { origin: 'https://app.example' }, asyncapi: true },
    {
      before: async (app) => {
        await app.register(fastifyCors, { origin: 'https://shop.example' })
        app.get('/api/items', async () => [])
      }
    }
  )
  const items = await app.inject({ url: '/api/items', headers: { origin: 'https://shop.example' } })
  t.equal(items.headers['access-control-allow-origin'], 'https://shop.example')
  const doc = await app.inject({ url: '/ws/asyncapi.json', headers: { origin: 'https://app.example' } })
  t.equal(doc.statusCode, 200)
  t.ok(doc.headers['access-control-allow-origin'] !== undefined, 'the document is readable from a page the app allows')
})

t.test('@fastify/jwt or @fastify/websocket registered after the plugin fails with an error naming fastify-realtime', async (t) => {
  for (const [name, first, plugin, options] of [
    ['@fastify/jwt', 'user', fastifyJwt, { secret: SECRET }],
    ['@fastify/websocket', 'ws', fastifyWebsocket, {}]
  ] as const) {
    const app = Fastify()
    await app.register(realtime, { jwt: { secret: SECRET } })
    app.register(plugin as never, options)
    await t.rejects(
      async () => app.ready(),
      {
        code: 'FST_REALTIME_REGISTRATION_ORDER',
        message: `fastify-realtime: the decorator "${first}" was added again after fastify-realtime registered ${name}, which adds it (${name} registered after fastify-realtime?). Register ${name} before fastify-realtime, which then uses it, or leave it to fastify-realtime`
      },
      name
    )
    await app.close()
  }
  const fine = Fastify()
  await fine.register(realtime, { jwt: { secret: SECRET } })
  fine.decorateRequest('session', null)
  fine.decorateReply('flash', null)
  fine.decorate('other', 1)
  await fine.ready()
  t.equal(fine.hasDecorator('other'), true, 'other decorators pass through')
  await fine.close()
})

t.test('the Redis adapter without ioredis says how to install it', async (t) => {
  const missing = Object.assign(new Error("Cannot find package 'ioredis'"), { code: 'ERR_MODULE_NOT_FOUND' })
  await t.rejects(
    loadIoredis(async () => Promise.reject(missing)),
    {
      message: 'fastify-realtime/redis needs the ioredis package, which is not installed: npm install ioredis'
    }
  )
  const other = new Error('a syntax error inside ioredis')
  await t.rejects(
    loadIoredis(async () => Promise.reject(other)),
    other
  )
  t.equal(typeof (await loadIoredis()), 'function')
})
