import { connect as h2connect } from 'node:http2'
import t from 'tap'
import WebSocket from 'ws'
import { connect, logCapture, sign } from './helpers/index.js'
import { startNginx } from './helpers/nginx.js'
import { baseUrl, openStream, SseParser, streamApp } from './helpers/sse.js'

const allowAll = { authorize: () => true }
const thought = (n: number) => ({ type: 'agent:thought' as const, data: { runId: 'run', content: `event ${n}` } })

t.test('a comment heartbeat goes out at the heartbeat interval and keeps the stream open', async (t) => {
  const app = await streamApp(t, { ...allowAll, heartbeat: { interval: 50, timeout: 20 } })
  const stream = await openStream(app, 'alice')
  const until = Date.now() + 3000
  while (stream.parser.comments < 3 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20))
  t.ok(stream.parser.comments >= 3, 'three heartbeats')
  t.equal(app.realtime.stats().transports.sse, 1, 'never reaped for want of a pong')
  stream.cut()
})

t.test('token streams, questions, presence and cancels work over a stream', async (t) => {
  const app = await streamApp(t, { ...allowAll, presence: true })
  const stream = await openStream(app, 'alice', { rooms: ['run:1'] })
  await stream.next('subscribed')
  // Presence: the list comes back in the POST, the join on the stream.
  const list = await stream.post({ type: 'presence', id: 'p1', room: 'run:1' })
  t.match(list.body, { type: 'presence', id: 'p1', data: { members: [{ user: 'alice' }] } })
  // A token stream: opened, deltas, ended.
  const tokens = app.realtime.stream('run:1', thought(0), { window: 0 })
  tokens.append('Hel')
  await new Promise((resolve) => setTimeout(resolve, 5))
  tokens.append('lo')
  await tokens.end()
  t.match(await stream.next('stream'), { room: 'run:1' })
  const ended = await stream.next('agent:thought')
  t.equal(ended.data.content, 'event 0Hello')
  t.ok(stream.frames.filter((f) => f.type === 'delta').length >= 1, 'deltas came')
  // A question, answered with a POST.
  const asked = app.realtime.ask('run:1', {
    type: 'hitl_request',
    data: { requestId: 'q1', question: 'Go?', options: [{ id: 'yes', label: 'Yes' }] }
  })
  const question = await stream.next('hitl_request')
  const answered = await stream.post({ type: 'reply', id: question.id, room: 'run:1', data: { optionId: 'yes' } })
  t.match(answered.body, { type: 'ack', id: question.id })
  t.same(await asked, { optionId: 'yes' })
  // A cancel of a run.
  const run = app.realtime.run(
    { room: 'run:1', runId: 'r1' },
    (signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve('stopped')))
  )
  const cancel = await stream.post({ type: 'cancel', id: 'c1', room: 'run:1', data: { runId: 'r1' } })
  t.match(cancel.body, { type: 'ack', id: 'c1' })
  t.equal(await run, 'stopped', 'the run saw the cancel')
  stream.cut()
})

t.test('a reader that takes nothing is closed with 4008 past limits.bufferedBytes, like a WebSocket one', async (t) => {
  const logs = logCapture()
  const app = await streamApp(t, { ...allowAll, limits: { bufferedBytes: 64 * 1024 } }, logs.fastify)
  const port = (app.server.address() as { port: number }).port
  // A raw socket that sends the request and never reads the answer.
  const { connect: tcp } = await import('node:net')
  const socket = tcp(port, '127.0.0.1')
  socket.pause()
  socket.write(`GET /ws/sse?room=big:1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${sign('alice')}\r\n\r\n`)
  const until = Date.now() + 3000
  while (app.realtime.stats().subscriptions < 1 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 10))
  const big = 'x'.repeat(16 * 1024)
  for (let n = 0; n < 200 && app.realtime.stats().transports.sse > 0; n++) {
    await app.realtime.emit('big:1', { type: 'agent:thought', data: { runId: 'r', content: big } })
  }
  t.equal(app.realtime.stats().transports.sse, 0, 'the stream was closed')
  t.ok(logs.records().some((r) => r.msg === 'realtime slow consumer disconnected'))
  // It reads nothing, so not even the end of the stream: it is cut a second later.
  const closed = () => logs.records().some((r) => r.msg === 'realtime connection closed')
  while (!closed() && Date.now() < until + 3000) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(closed(), 'the socket was cut')
  socket.destroy()
})

t.test('over HTTP/2 one connection carries several streams and their POSTs', async (t) => {
  const app = await streamApp(t, allowAll, { http2: true } as never)
  const port = (app.server.address() as { port: number }).port
  const session = h2connect(`http://127.0.0.1:${port}`)
  t.teardown(() => session.close())
  const open = (room: string) =>
    new Promise<{ parser: SseParser; frames: any[]; status: number; wait: (type: string) => Promise<any> }>((resolve) => {
      const frames: any[] = []
      const waiters: Array<() => void> = []
      const parser = new SseParser((e) => {
        frames.push(JSON.parse(e.data))
        for (const w of waiters.splice(0)) w()
      })
      const wait = async (type: string) => {
        for (;;) {
          const i = frames.findIndex((f) => f.type === type)
          if (i !== -1) return frames.splice(i, 1)[0]
          await new Promise<void>((r) => waiters.push(r))
        }
      }
      const req = session.request({ ':path': `/ws/sse?room=${room}`, authorization: `Bearer ${sign('alice')}` })
      req.setEncoding('utf8')
      req.on('response', (headers) => resolve({ parser, frames, status: Number(headers[':status']), wait }))
      req.on('data', (chunk: string) => parser.push(chunk))
    })
  const a = await open('h2:a')
  const b = await open('h2:b')
  t.equal(a.status, 200)
  t.equal(b.status, 200)
  const ready = await a.wait('ready')
  await a.wait('subscribed')
  await b.wait('subscribed')
  await app.realtime.emit('h2:a', thought(1))
  await app.realtime.emit('h2:b', thought(2))
  t.match(await a.wait('agent:thought'), { room: 'h2:a', seq: 1 })
  t.match(await b.wait('agent:thought'), { room: 'h2:b', seq: 1 })
  t.match(a.parser.lastId, /^h2:a~.+~1$/)
  const answer = await new Promise<string>((resolve) => {
    const req = session.request({
      ':method': 'POST',
      ':path': `/ws/sse/${ready.data.connectionId}`,
      authorization: `Bearer ${sign('alice')}`,
      'content-type': 'application/json'
    })
    let text = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => {
      text += chunk
    })
    req.on('end', () => resolve(text))
    req.end(JSON.stringify({ type: 'ping', id: 'h2' }))
  })
  t.same(JSON.parse(answer), { type: 'pong', id: 'h2' })
  t.equal(app.realtime.stats().transports.sse, 2)
})

t.test('metrics count connections by transport', async (t) => {
  const app = await streamApp(t, { ...allowAll, metrics: true })
  const stream = await openStream(app, 'alice')
  const text = await (await fetch(`${baseUrl(app, '/metrics')}`)).text()
  t.match(text, /realtime_connections_by_transport\{transport="sse"\} 1/)
  t.match(text, /realtime_connections_by_transport\{transport="websocket"\} 0/)
  stream.cut()
})

t.test('sse: false serves WebSocket only; bad sse options name the option', async (t) => {
  const app = await streamApp(t, { ...allowAll, sse: false })
  const res = await fetch(`${baseUrl(app)}/sse`, { headers: { authorization: `Bearer ${sign('alice')}` } })
  t.equal(res.status, 404)
  const ws = await connect(app, 'alice')
  t.same(app.realtime.stats().transports, { websocket: 1, sse: 0 }, 'every connection is a WebSocket')
  ws.close()
  const Fastify = (await import('fastify')).default
  const realtime = (await import('../src/index.js')).default
  for (const [sse, message] of [
    [{ retry: -1 }, /option "sse.retry" must be a positive integer/],
    [{ ticketTtl: 'soon' }, /option "sse.ticketTtl" must be a positive integer/],
    ['yes', /option "sse" must be an object/]
  ] as const) {
    const bad = Fastify()
    bad.register(realtime, { jwt: { secret: 'x'.repeat(32) }, sse: sse as never })
    await t.rejects(
      async () => {
        await bad.ready()
      },
      { message }
    )
    await bad.close()
  }
})

t.test('behind nginx that refuses upgrades, a stream still delivers every event and resumes', async (t) => {
  const app = await streamApp(t, allowAll)
  const port = await startNginx(t, (app.server.address() as { port: number }).port, false)
  const refused = await new Promise<number>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, ['realtime.v1'], { headers: { authorization: `Bearer ${sign('alice')}` } })
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    ws.on('error', () => {})
  })
  t.equal(refused, 403, 'nginx refuses the upgrade')
  const proxied = { address: () => ({ port }) } as never
  const stream = await openStream({ server: proxied } as never, 'alice', { rooms: ['n:1'] })
  await stream.next('subscribed')
  for (let n = 1; n <= 100; n++) void app.realtime.emit('n:1', thought(n))
  const events = await stream.collect('agent:thought', 100)
  t.same(
    events.map((e) => e.seq),
    Array.from({ length: 100 }, (_, i) => i + 1)
  )
  const lastId = stream.lastId
  stream.cut()
  await app.realtime.emit('n:1', thought(101))
  const again = await openStream({ server: proxied } as never, 'alice', { lastEventId: lastId })
  await again.next('subscribed')
  t.match(await again.next('agent:thought'), { seq: 101 })
  again.cut()
})
