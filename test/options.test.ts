import fastifyJwt from '@fastify/jwt'
import Fastify from 'fastify'
import t from 'tap'
import * as lib from '../src/index.js'
import { agentEvents, defineEvents, Type } from '../src/index.js'
import { logCapture, SECRET } from './helpers/index.js'

async function registerWith(options: unknown): Promise<void> {
  const app = Fastify()
  try {
    await app.register(lib.default, options as lib.RealtimeOptions)
    await app.ready()
  } finally {
    await app.close()
  }
}

const jwt = { secret: SECRET }

t.test('every wrong option fails register with a message that names it', async (t) => {
  const cases: Array<[string, unknown, string]> = [
    ['options not an object', 'nope', 'option "options" must be an object (got string)'],
    ['an unknown option', { jwt, pathh: '/x' }, 'unknown option "pathh"'],
    [
      'no jwt, no @fastify/jwt and no authenticate',
      {},
      'option "jwt" is required: pass { secret }, register @fastify/jwt first, or give "authenticate"'
    ],
    ['authenticate not a function', { authenticate: 'session' }, 'option "authenticate" must be a function of the request (got string)'],
    [
      'subscriptions not a function',
      { jwt, subscriptions: ['user:1'] },
      'option "subscriptions" must be a function of the user and the request (got array)'
    ],
    ['an empty jwt.cookie', { jwt: { ...jwt, cookie: '' } }, 'option "jwt.cookie" must be a cookie name (got string)'],
    [
      'a jwt cookie with any origin',
      { jwt: { ...jwt, cookie: 'token' }, cors: { origin: '*' } },
      'option "jwt.cookie" needs allowed origins: with cors.origin "*" any site could connect with the user\'s cookie'
    ],
    ['jwt not an object', { jwt: 'secret' }, 'option "jwt" must be an object (got string)'],
    [
      'jwt without secret',
      { jwt: {} },
      'option "jwt.secret" must be a non-empty string, a Buffer, { public, private } keys or a function of the token (got undefined)'
    ],
    ['an empty secret', { jwt: { secret: '' } }, 'option "jwt.secret" must be a non-empty string'],
    [
      'a null secret',
      { jwt: { secret: null } },
      'option "jwt.secret" must be a non-empty string, a Buffer, { public, private } keys or a function of the token (got null)'
    ],
    ['path without slash', { jwt, path: 'ws' }, 'option "path" must be a string starting with "/" (got string)'],
    ['path not a string', { jwt, path: 42 }, 'option "path" must be a string starting with "/" (got number)'],
    ['events not an object', { jwt, events: [] }, 'option "events": an event registry must be an object of name → TypeBox schema'],
    ['an event that is no schema', { jwt, events: { x: { type: 'string' } } }, 'option "events": event "x" must map to a TypeBox schema'],
    [
      'a reserved name in events',
      { jwt, events: { error: Type.Object({}) } },
      'option "events": "error" is a reserved control type of realtime.v1'
    ],
    ['authorize not a function', { jwt, authorize: true }, 'option "authorize" must be a function (got boolean)'],
    ['snapshot not a function', { jwt, snapshot: {} }, 'option "snapshot" must be a function (got object)'],
    ['cors not an object', { jwt, cors: 'x' }, 'option "cors" must be an object (got string)'],
    [
      'cors.origin a number',
      { jwt, cors: { origin: 5 } },
      'option "cors.origin" must be a string, a RegExp, an array of them or a function of the origin (got number)'
    ],
    [
      'cors.origin with a non-string',
      { jwt, cors: { origin: ['a', 1] } },
      'option "cors.origin" must be a string, a RegExp, an array of them or a function of the origin (got an array with something else)'
    ],
    [
      'cors.origin null',
      { jwt, cors: { origin: null } },
      'option "cors.origin" must be a string, a RegExp, an array of them or a function of the origin (got null)'
    ],
    ['heartbeat.interval zero', { jwt, heartbeat: { interval: 0 } }, 'option "heartbeat.interval" must be a positive integer (got number)'],
    [
      'heartbeat.timeout a string',
      { jwt, heartbeat: { timeout: '5s' } },
      'option "heartbeat.timeout" must be a positive integer (got string)'
    ],
    ['heartbeat null', { jwt, heartbeat: null }, 'option "heartbeat" must be an object (got null)'],
    [
      'a heartbeat past the timer limit',
      { jwt, heartbeat: { interval: 2 ** 31 } },
      'option "heartbeat.interval" must be at most 2147483647 ms (got number)'
    ],
    [
      'an unknown limit',
      { jwt, limits: { maxPayloadBytes: 1 } },
      'unknown option "limits.maxPayloadBytes" (known: maxPayload, messagesPerSecond'
    ],
    ['a fractional limit', { jwt, limits: { burst: 1.5 } }, 'option "limits.burst" must be a positive integer (got number)'],
    ['a negative limit', { jwt, limits: { maxPayload: -1 } }, 'option "limits.maxPayload" must be a positive integer'],
    ['roomPattern a string', { jwt, limits: { roomPattern: '.*' } }, 'option "limits.roomPattern" must be a RegExp (got string)'],
    ['validate a string', { jwt, validate: 'yes' }, 'option "validate" must be a boolean (got string)'],
    ['allowQueryToken a number', { jwt, allowQueryToken: 1 }, 'option "allowQueryToken" must be a boolean (got number)'],
    ['requestTimeout negative', { jwt, requestTimeout: -5 }, 'option "requestTimeout" must be a positive integer'],
    ['tokenExpiryGrace negative', { jwt, tokenExpiryGrace: -1 }, 'option "tokenExpiryGrace" must be a non-negative integer (got number)'],
    [
      'adapter missing methods',
      { jwt, adapter: { init() {}, publish() {} } },
      'option "adapter" must be an adapter (missing subscribe, unsubscribe, history, presenceAdd, presenceRemove, presenceRefresh, presenceList, stateRead, stateWrite, stateClaim, stateTake) (got object)'
    ],
    [
      'adapter null',
      { jwt, adapter: null },
      'option "adapter" must be an adapter (missing init, publish, subscribe, unsubscribe, history, presenceAdd, presenceRemove, presenceRefresh, presenceList, stateRead, stateWrite, stateClaim, stateTake) (got null)'
    ],
    ['presence string', { jwt, presence: 'yes' }, 'option "presence" must be a boolean or a function of the room (got string)'],
    ['presenceInfo object', { jwt, presenceInfo: {} }, 'option "presenceInfo" must be a function (got object)'],
    ['history.size negative', { jwt, history: { size: -1 } }, 'option "history.size" must be a non-negative integer'],
    ['history.ttl zero', { jwt, history: { ttl: 0 } }, 'option "history.ttl" must be a positive integer'],
    ['history.rooms not a function', { jwt, history: { rooms: {} } }, 'option "history.rooms" must be a function (got object)'],
    ['deflate a string', { jwt, deflate: 'on' }, 'option "deflate" must be an object (got string)'],
    ['deflate.level out of range', { jwt, deflate: { level: 10 } }, 'option "deflate.level" must be an integer from -1 to 9 (got number)'],
    ['deflate.level a string', { jwt, deflate: { level: 'max' } }, 'option "deflate.level" must be an integer from -1 to 9 (got string)'],
    ['deflate.threshold negative', { jwt, deflate: { threshold: -1 } }, 'option "deflate.threshold" must be a non-negative integer'],
    ['coalesce a number', { jwt, coalesce: 2 }, 'option "coalesce" must be an object (got number)'],
    ['coalesce.windowMs zero', { jwt, coalesce: { windowMs: 0 } }, 'option "coalesce.windowMs" must be a positive integer'],
    ['coalesce.maxBytes fractional', { jwt, coalesce: { maxBytes: 1.5 } }, 'option "coalesce.maxBytes" must be a positive integer'],
    ['batch a string', { jwt, batch: 'yes' }, 'option "batch" must be a boolean (got string)'],
    ['limits.volatileBytes zero', { jwt, limits: { volatileBytes: 0 } }, 'option "limits.volatileBytes" must be a positive integer'],
    ['asyncapi a string', { jwt, asyncapi: 'yes' }, 'option "asyncapi" must be an object (got string)'],
    ['asyncapi.title a number', { jwt, asyncapi: { title: 1 } }, 'option "asyncapi.title" must be a string (got number)'],
    [
      'an unknown asyncapi field',
      { jwt, asyncapi: { servers: [] } },
      'unknown option "asyncapi.servers" (known: title, version, description)'
    ]
  ]
  for (const [name, options, message] of cases) {
    await t.rejects(
      registerWith(options),
      { code: 'FST_REALTIME_INVALID_OPTION', message: new RegExp(escapeRegExp(`fastify-realtime: ${message}`)) },
      name
    )
  }
})

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

t.test('jwt conflicts with an @fastify/jwt the app registered', async (t) => {
  const app = Fastify()
  await app.register(fastifyJwt, { secret: SECRET })
  app.register(lib.default, { jwt })
  await t.rejects(async () => app.ready(), { message: /option "jwt" conflicts with the @fastify\/jwt already registered/ })
  await app.close()
})

t.test('a short secret is accepted with a warning', async (t) => {
  const logs = logCapture('warn')
  const app = Fastify(logs.fastify)
  await app.register(lib.default, { jwt: { secret: 'short' } })
  await app.ready()
  await app.close()
  t.ok(logs.records().some((r) => /shorter than 32 characters/.test(String(r.msg))))
})

t.test('history.rooms overrides size and ttl per room, and checks what it returns', async (t) => {
  const app = Fastify()
  await app.register(lib.default, {
    jwt,
    authorize: () => true,
    history: { size: 5, rooms: (room) => (room === 'none' ? { size: 0 } : room === 'bad' ? ({ size: 'x' } as never) : undefined) }
  })
  await app.ready()
  t.teardown(() => app.close())
  const r = await app.realtime.emit('kept', { type: 'agent:thought', data: { runId: 'r', content: 'x' } })
  t.equal(r.seq, 1)
  t.equal((await app.realtime.emit('none', { type: 'agent:thought', data: { runId: 'r', content: 'x' } })).seq, 1)
  t.throws(() => app.realtime.emit('bad', { type: 'agent:thought', data: { runId: 'r', content: 'x' } }), {
    message: /option "history.rooms\("bad"\).size" must be a non-negative integer/
  })
})

t.test('defineEvents refuses reserved names, empty or long names and non-schemas', async (t) => {
  for (const name of [
    'subscribe',
    'unsubscribe',
    'ping',
    'auth',
    'reply',
    'presence',
    'ready',
    'subscribed',
    'ack',
    'error',
    'join',
    'leave'
  ]) {
    t.throws(() => defineEvents({ [name]: Type.Object({}) }), {
      code: 'FST_REALTIME_INVALID_REGISTRY',
      message: `fastify-realtime: "${name}" is a reserved control type of realtime.v1`
    })
  }
  t.throws(() => defineEvents({ '': Type.Object({}) }), { message: /must be 1 to 128 characters/ })
  t.throws(() => defineEvents({ ['x'.repeat(129)]: Type.Object({}) }), { message: /must be 1 to 128 characters/ })
  t.throws(() => defineEvents({ x: { type: 'object' } as never }), { message: 'fastify-realtime: event "x" must map to a TypeBox schema' })
  t.throws(() => defineEvents(null as never), { message: /must be an object of name/ })
  t.throws(() => defineEvents([] as never), { message: /must be an object of name/ })
  const extended = defineEvents({ ...agentEvents, 'invoice:paid': Type.Object({ invoiceId: Type.String() }) })
  t.same(Object.keys(extended).length, Object.keys(agentEvents).length + 1)
})

t.test('the preset covers the agent stream', async (t) => {
  t.same(Object.keys(agentEvents).sort(), [
    'agent:error',
    'agent:result',
    'agent:thought',
    'agent:tool_call',
    'error_notification',
    'hitl_request',
    'node_status',
    'task_update'
  ])
})

t.test('the plugin is exported as default, as fastifyRealtime and as realtime', async (t) => {
  t.equal(typeof lib.default, 'function')
  t.equal(lib.fastifyRealtime, lib.default)
  t.equal(lib.realtime, lib.default)
  const meta = (lib.default as unknown as Record<symbol, { name: string; fastify: string }>)[Symbol.for('plugin-meta')]
  t.match(meta, { name: 'fastify-realtime', fastify: '5.x' })
  t.equal(lib.SUBPROTOCOL, 'realtime.v1')
  t.equal(lib.CloseCode.TokenExpired, 4001)
  t.equal(lib.Type, Type)
})

t.test('shouldReconnect follows the close code table', async (t) => {
  const { shouldReconnect } = lib
  for (const code of [1001, 1005, 1006, 1011, 1012, 1013, 4000, 4001, 4008, 4029, 4499]) t.equal(shouldReconnect(code), true, String(code))
  for (const code of [1000, 1002, 1003, 1008, 1009, 4500, 4503, 4999, 3000]) t.equal(shouldReconnect(code), false, String(code))
})

t.test('coalesce, batch and deflate take true and false', async (t) => {
  await t.resolves(registerWith({ jwt, coalesce: true, batch: true, deflate: false }))
  await t.resolves(registerWith({ jwt, coalesce: false, batch: false, deflate: { threshold: 0, level: 1 } }))
})
