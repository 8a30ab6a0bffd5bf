import t, { type Test } from 'tap'
import { createClient } from '../src/client/index.js'
import { httpBase } from '../src/client/sse-socket.js'
import { Type } from '../src/index.js'
import { EventStreamParser } from '../src/protocol/sse.js'
import { sdk, until } from './helpers/client.js'
import { sign } from './helpers/index.js'
import { startNginx } from './helpers/nginx.js'
import { streamApp } from './helpers/sse.js'

const allowAll = { authorize: () => true }
const thought = (n: number) => ({ type: 'agent:thought' as const, data: { runId: 'run', content: `event ${n}` } })

async function deliver(t: Test, upgrades: boolean) {
  const app = await streamApp(t, allowAll)
  const port = await startNginx(t, (app.server.address() as { port: number }).port, upgrades)
  const seqs: number[] = []
  const client = sdk(t, `ws://127.0.0.1:${port}/ws`, { token: sign('alice') })
  let subscribed!: () => void
  const ready = new Promise<void>((resolve) => {
    subscribed = resolve
  })
  client.subscribe('n:1', (event) => seqs.push(event.seq as number), { onSubscribed: () => subscribed() })
  await ready
  for (let n = 1; n <= 1000; n++) void app.realtime.emit('n:1', thought(n))
  await until(() => seqs.length >= 1000, 20_000, '1,000 events')
  t.same(
    seqs,
    Array.from({ length: 1000 }, (_, i) => i + 1),
    'every event once, in order'
  )
  return { client, app }
}

t.test('behind nginx refusing upgrades, the default client falls back to SSE and gets 1,000 events', async (t) => {
  const { client, app } = await deliver(t, false)
  t.equal(client.transport, 'sse')
  t.same(app.realtime.stats().transports, { websocket: 0, sse: 1 })
})

t.test('behind nginx passing upgrades, the default client uses WebSocket', async (t) => {
  const { client, app } = await deliver(t, true)
  t.equal(client.transport, 'websocket')
  t.same(app.realtime.stats().transports, { websocket: 1, sse: 0 })
})

t.test('an SSE client sends, is answered, and resumes after the server cuts its stream three times', async (t) => {
  const lastIds: string[] = []
  const app = await streamApp(
    t,
    allowAll,
    {},
    {
      before: (app) =>
        app.addHook('onRequest', async (request) => {
          const id = request.headers['last-event-id']
          if (typeof id === 'string') lastIds.push(id)
        })
    }
  )
  const address = app.server.address() as { port: number }
  const client = createClient({
    url: `ws://127.0.0.1:${address.port}/ws`,
    token: sign('alice'),
    transports: ['sse'],
    reconnect: { initialDelay: 10, maxDelay: 50 }
  })
  t.teardown(() => client.close())
  const seqs: number[] = []
  let subscribed = 0
  client.subscribe('run:1', (event) => seqs.push(event.seq as number), { onSubscribed: () => subscribed++ })
  await until(() => subscribed === 1, 5000, 'subscribed')
  t.equal(client.transport, 'sse')
  t.same(await client.presence('run:1').catch((err) => err.code), 'forbidden', 'answers come back through the POST')
  for (let cut = 0; cut < 3; cut++) {
    for (let n = 1; n <= 20; n++) await app.realtime.emit('run:1', thought(cut * 20 + n))
    // The server cuts the stream mid-run, with more events on the way.
    const id = client.connectionId as string
    app.realtime.connection(id)?.close(4010, 'cut')
    for (let n = 21; n <= 25; n++) await app.realtime.emit('run:1', thought(cut * 20 + n))
    await until(() => client.connectionId !== undefined && client.connectionId !== id, 5000, 'a new stream')
  }
  await app.realtime.emit('run:1', thought(999))
  await until(() => seqs.length >= 76, 5000, 'every event')
  t.same(
    seqs,
    Array.from({ length: 76 }, (_, i) => i + 1),
    'every event once, in order'
  )
  t.equal(lastIds.length, 3, 'each new stream sent Last-Event-ID')
})

t.test('close() while a message is on its way over SSE cuts its POST, fails its send as closed and throws nothing', async (t) => {
  const app = await streamApp(t, allowAll)
  let answer!: (value: string) => void
  let received!: () => void
  const handling = new Promise<void>((resolve) => {
    received = resolve
  })
  app.realtime.handle('slow', Type.Object({}), () => {
    received()
    return new Promise<string>((resolve) => {
      answer = resolve
    })
  })
  const posts: Array<Promise<string>> = []
  const address = app.server.address() as { port: number }
  const client = createClient({
    url: `ws://127.0.0.1:${address.port}/ws`,
    token: sign('alice'),
    transports: ['sse'],
    reconnect: false,
    fetch: (url, init) => {
      const response = fetch(url, init)
      const outcome = response.then(
        () => 'answered',
        (err: Error) => err.name
      )
      if (init.method === 'POST') posts.push(outcome)
      return response
    }
  })
  t.teardown(() => client.close())
  await until(() => client.state === 'open', 5000, 'open')
  const sent = client.send('slow', {})
  await handling
  client.close()
  await t.rejects(sent, { code: 'closed' })
  t.same(await Promise.all(posts), ['AbortError'], 'the POST waiting for its answer was cut')
  answer('too late')
  t.equal(client.state, 'closed')
})

t.test('transports: a bad list or none this runtime can use is refused; a refused stream is a failed attempt', async (t) => {
  t.throws(() => createClient({ url: 'ws://localhost/ws', transports: [] }), { name: 'TypeError', message: /transports must list/ })
  t.throws(() => createClient({ url: 'ws://localhost/ws', transports: ['polling' as never] }), { message: /transports must list/ })
  const saved = globalThis.fetch
  ;(globalThis as { fetch?: unknown }).fetch = undefined
  try {
    t.throws(() => createClient({ url: 'ws://localhost/ws', transports: ['sse'] }), {
      message: /no WebSocket implementation found and no fetch/
    })
  } finally {
    globalThis.fetch = saved
  }
  const app = await streamApp(t, allowAll)
  const address = app.server.address() as { port: number }
  const states: string[] = []
  const client = createClient({ url: `ws://127.0.0.1:${address.port}/ws`, token: 'not-a-token', transports: ['sse'], reconnect: false })
  t.teardown(() => client.close())
  client.onStateChange((state) => states.push(state))
  await until(() => client.state === 'closed', 5000, 'the refused stream to end the client')
  t.same(states, ['closed'])
})

t.test('the stream of a ws:// URL is read over http://, of a wss:// URL over https://, with the query kept', async (t) => {
  t.same(httpBase('ws://127.0.0.1:3000/ws'), { base: 'http://127.0.0.1:3000/ws', query: '' })
  t.same(httpBase('wss://rt.example.com/ws?tenant=acme'), { base: 'https://rt.example.com/ws', query: '?tenant=acme' })
})

t.test('the stream parser skips comments and reads a field without a colon as one with an empty value', async (t) => {
  const events: Array<[string, string]> = []
  const parser = new EventStreamParser({ event: (event, data) => events.push([event, data]) })
  parser.push(': heartbeat\n\n')
  t.same(events, [], 'a comment alone dispatches nothing')
  parser.push('id: 7\ndata\n\n')
  t.same(events, [['message', '']], '`data` alone is an empty line of data')
  t.equal(parser.lastId, '7')
  parser.push(':comment between fields\nevent: close\ndata: {}\nid\n\n')
  t.same(events[1], ['close', '{}'], 'a comment inside an event leaves it whole')
  t.equal(parser.lastId, '', '`id` alone resets the last event id')
  const told: Array<string | number> = []
  const full = new EventStreamParser(
    { event: (event) => told.push(event), comment: () => told.push('comment'), retry: (ms) => told.push(ms) },
    'a~e~1'
  )
  full.push('retry: soon\nretry: 1500\n: hi\nid: a~e~2\0\ndata: x\r\n\r\n')
  t.same(told, [1500, 'comment', 'message'], 'a retry that is not a number is ignored; a comment is told')
  t.equal(full.lastId, 'a~e~1', 'an id holding NUL is ignored: the one given at the start stands')
})
