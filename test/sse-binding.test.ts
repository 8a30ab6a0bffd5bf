// The text/event-stream binding of the transport contract (src/server/transport.ts) over a real HTTP response, the
// way ws-transport.test.ts checks the WebSocket one: what a closed stream does with late writes, how a close is told,
// and how a posted message finds its answer (in the POST, or on the stream when the POST is gone).
import { once } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import t, { type Test } from 'tap'
import { SseTransport } from '../src/server/sse-transport.js'
import { OutboundMessage, type TransportListener } from '../src/server/transport.js'
import { type SseEvent, SseParser } from './helpers/sse.js'

const quiet = { info() {}, warn() {}, error() {}, debug() {} } as unknown as FastifyBaseLogger

/** A listener that records what the binding reports, and answers each message the way `answer` says. */
function recorder(
  s: { readonly transport: SseTransport },
  answer: (body: Record<string, unknown>) => OutboundMessage | undefined = () => undefined
) {
  const seen: string[] = []
  const listener: TransportListener = {
    message: (data) => {
      seen.push(`message ${String(data)}`)
      let body: Record<string, unknown>
      try {
        body = JSON.parse(String(data))
      } catch {
        body = { type: '?' }
      }
      const reply = answer(body)
      if (reply !== undefined) s.transport.write(reply)
    },
    alive: () => seen.push('alive'),
    closed: (code, reason) => seen.push(`closed ${code} ${reason}`)
  }
  return { seen, listener }
}

const reply = (fields: Record<string, unknown>) => new OutboundMessage(Buffer.from(JSON.stringify(fields)))

/** An HTTP server whose one response becomes an `SseTransport`, and a client reading that stream. */
async function stream(t: Test) {
  let transport: SseTransport | undefined
  let response: ServerResponse | undefined
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    response = res
    transport = new SseTransport(res, quiet)
    transport.begin(1000)
    server.emit('stream')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const made = once(server, 'stream')
  const abort = new AbortController()
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { signal: abort.signal })
  await made
  const events: SseEvent[] = []
  const waiters: (() => void)[] = []
  const parser = new SseParser((event) => {
    events.push(event)
    for (const w of waiters.splice(0)) w()
  })
  let ended = false
  const pumped = (async () => {
    const decoder = new TextDecoder()
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) parser.push(decoder.decode(chunk, { stream: true }))
    } catch {
      // Cut by either side.
    }
    ended = true
    for (const w of waiters.splice(0)) w()
  })()
  t.teardown(async () => {
    abort.abort()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  /** Waits for `n` events in all (or the end of the stream). */
  const take = async (n: number): Promise<SseEvent[]> => {
    while (events.length < n && !ended) await new Promise<void>((resolve) => waiters.push(resolve))
    return events.slice(0, n)
  }
  return {
    transport: transport as SseTransport,
    response: response as ServerResponse,
    parser,
    take,
    cut: () => abort.abort(),
    ended: () => pumped
  }
}

t.test('a stream the client left takes no more writes, pings or closes, and reports its end once, as 1006', async (t) => {
  const s = await stream(t)
  const { seen, listener } = recorder(s)
  s.transport.listen(listener)
  const gone = once(s.response, 'close')
  s.cut()
  await gone
  t.notOk(s.transport.open)
  s.transport.write(reply({ type: 'note' }))
  s.transport.writeMany([reply({ type: 'note' })])
  s.transport.ping()
  s.transport.close(1000, 'late')
  s.transport.terminate()
  t.same(seen, ['closed 1006 stream ended'], 'no alive from a ping on a closed stream, one close')
  const late = s.transport.post(Buffer.from('{"type":"ping"}'), () => {})
  late.abandon()
  t.same(await late.answer, {
    status: 410,
    body: JSON.stringify({
      statusCode: 410,
      code: 'FST_REALTIME_SESSION_CLOSED',
      error: 'Gone',
      message: 'the session closed (1006 stream ended)'
    })
  })
})

t.test('close() tells the client the code and reason in a close event, once; a POST after it is told the same', async (t) => {
  const s = await stream(t)
  const { seen, listener } = recorder(s)
  s.transport.listen(listener)
  s.transport.ping()
  s.transport.close(4003, 'forbidden')
  s.transport.close(1000, 'again')
  await s.ended()
  const [event] = await s.take(1)
  t.same([event?.event, event && JSON.parse(event.data)], ['close', { code: 4003, reason: 'forbidden' }])
  t.equal(s.parser.comments, 1, 'the ping went out as a comment')
  t.same(seen, ['alive', 'closed 4003 forbidden'])
  const after = await s.transport.post(Buffer.from('{"type":"reply","id":"r1","data":{}}'), () => {}).answer
  t.match(JSON.parse(after.body as string), { message: 'the session closed (4003 forbidden)' })
})

t.test('terminate() ends the stream at once, without a close event', async (t) => {
  const s = await stream(t)
  const { seen, listener } = recorder(s)
  s.transport.listen(listener)
  s.transport.write(reply({ type: 'note' }))
  await s.take(1)
  const gone = once(s.response, 'close')
  s.transport.terminate()
  await s.ended()
  await gone
  t.same(
    (await s.take(2)).map((e) => e.event),
    ['message'],
    'what was written before, and no close event'
  )
  t.same(seen, ['closed 1006 stream ended'])
})

t.test('a posted message gets its reply in the POST: with its own id, with one lent to it, or none expected', async (t) => {
  const s = await stream(t)
  const { seen, listener } = recorder(s, (body) => {
    if (body.data === 'bye') s.transport.close(4001, 'unauthorized')
    if (body.data === 'wrong') return reply({ type: 'error', id: body.id, data: { code: 'unknown_request' } })
    if (body.type === 'subscribe') return reply({ type: 'subscribed', id: body.id, room: body.room, data: { seq: 0, epoch: 'e' } })
    if (body.type === 'unsubscribe') return reply({ type: 'unsubscribed', id: body.id, room: body.room })
    if (body.type === 'ping') return reply({ type: 'pong', id: body.id })
    if (body.type === 'presence') return reply({ type: 'presence', id: body.id, room: body.room, data: { members: [] } })
    return undefined
  })
  s.transport.listen(listener)
  const own = await s.transport.post(Buffer.from('{"type":"subscribe","id":"s1","room":"a"}'), () => {}).answer
  t.same([own.status, JSON.parse(own.body as string)], [200, { type: 'subscribed', id: 's1', room: 'a', data: { seq: 0, epoch: 'e' } }])
  const lent = await s.transport.post(Buffer.from('{"type":"ping"}'), () => {}).answer
  t.same(JSON.parse(lent.body as string), { type: 'pong' }, 'the id lent to it is taken off again')
  t.match(seen[1], /^message \{"type":"ping","id":"~post\.\d+"\}$/)
  const members = await s.transport.post(Buffer.from('{"type":"presence","id":"p1","room":"a"}'), () => {}).answer
  t.match(JSON.parse(members.body as string), { type: 'presence', room: 'a' }, 'a reply of a room that moves no id')
  // A reply to a server request is answered on the stream only when it is wrong: the POST itself has nothing to say.
  t.same(await s.transport.post(Buffer.from('{"type":"reply","id":"q1","data":{}}'), () => {}).answer, { status: 204 })
  // Unless it is wrong: that is known at once, and told in the POST (with the id lent to it taken off).
  const wrong = await s.transport.post(Buffer.from('{"type":"reply","data":"wrong"}'), () => {}).answer
  t.same([wrong.status, JSON.parse(wrong.body as string)], [200, { type: 'error', data: { code: 'unknown_request' } }])
  // The stream's id follows the rooms held: set by the subscribe, dropped by the unsubscribe.
  const left = await s.transport.post(Buffer.from('{"type":"unsubscribe","id":"u1","room":"a"}'), () => {}).answer
  t.match(JSON.parse(left.body as string), { type: 'unsubscribed', id: 'u1' })
  s.transport.write(OutboundMessage.of({ frame: Buffer.from('{"type":"note"}'), room: 'b', seq: 3, epoch: 'e2' }))
  const [event] = await s.take(1)
  t.equal(event?.lastId, 'b~e2~3', 'only the room held now')
  // A message whose handling closes the session is answered with that close.
  const bye = await s.transport.post(Buffer.from('{"type":"reply","id":"q2","data":"bye"}'), () => {}).answer
  t.same([bye.status, JSON.parse(bye.body as string).message], [410, 'the session closed (4001 unauthorized)'])
})

t.test('what the session cannot read is answered at once, whatever its shape, with the error its reply carries', async (t) => {
  const s = await stream(t)
  const { listener } = recorder(s, () => reply({ type: 'error', data: { code: 'invalid_message', message: 'bad' } }))
  s.transport.listen(listener)
  for (const body of ['not json', '[1, 2]', '"text"', 'null', '{"type":"subscribe","id":7}']) {
    const answer = await s.transport.post(Buffer.from(body), () => {}).answer
    t.same([answer.status, JSON.parse(answer.body as string).data.code], [400, 'invalid_message'], body)
  }
})

t.test('a reply whose POST went away goes to the stream, and so does one nobody waits for', async (t) => {
  const s = await stream(t)
  let held: OutboundMessage | undefined
  const { listener } = recorder(s, (body) => {
    held = reply({ type: 'ack', id: body.id })
    return undefined
  })
  s.transport.listen(listener)
  const posted = s.transport.post(Buffer.from('{"type":"cancel","id":"c1","room":"r","data":{"runId":"x"}}'), () => {})
  posted.abandon()
  s.transport.write(held as OutboundMessage)
  s.transport.write(reply({ type: 'ack', id: 'nobody' }))
  const events = await s.take(2)
  t.same(
    events.map((e) => JSON.parse(e.data)),
    [
      { type: 'ack', id: 'c1' },
      { type: 'ack', id: 'nobody' }
    ]
  )
})
