// The WebSocket binding of the transport contract (src/server/transport.ts), over real sockets: the fast path that
// writes frames built once to the TCP stream, and the fallback through ws's public send() that a ws release without
// those internals would take. Both must deliver the same messages.
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import t, { type Test } from 'tap'
import WebSocket, { WebSocketServer } from 'ws'
import { OutboundMessage, type TransportListener } from '../src/server/transport.js'
import { framingOf, reachInto, type WsReach, type WsSettings, wsTransport } from '../src/server/ws-transport.js'

const FALLBACK: WsReach = { wire: undefined, frame: undefined, window: 0 }

function quietLog(): FastifyBaseLogger & { warnings: string[] } {
  const warnings: string[] = []
  const log = {
    warnings,
    info() {},
    debug() {},
    error() {},
    warn: (_obj: unknown, msg: string) => warnings.push(msg)
  }
  return log as unknown as FastifyBaseLogger & { warnings: string[] }
}

/** A ws server and one client connected to it; `server` is the server side of that connection. */
async function pair(t: Test, deflate = false) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate ? { threshold: 0 } : false })
  await once(wss, 'listening')
  const accepted = once(wss, 'connection')
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate: deflate })
  const received: string[] = []
  const waiters: (() => void)[] = []
  client.on('message', (data) => {
    received.push(String(data))
    for (const w of waiters.splice(0)) w()
  })
  await once(client, 'open')
  const [server] = (await accepted) as [WebSocket]
  t.teardown(async () => {
    client.terminate()
    for (const c of wss.clients) c.terminate()
    await new Promise((resolve) => wss.close(resolve))
  })
  /** The next `n` messages the client has received, waiting for them as needed. */
  const take = async (n: number): Promise<string[]> => {
    while (received.length < n) await new Promise<void>((resolve) => waiters.push(resolve))
    return received.splice(0, n)
  }
  return { server, client, take }
}

const message = (text: string, seq?: number) =>
  seq === undefined
    ? new OutboundMessage(Buffer.from(JSON.stringify({ type: 'note', text })), 'r')
    : new OutboundMessage(Buffer.from(JSON.stringify({ type: 'note', text })), 'r', seq, 'e1')

const plain: WsSettings = { deflate: undefined, batch: false }

for (const [name, reach] of [
  ['frames written to the TCP stream', undefined],
  ["ws's public send() (fallback)", FALLBACK]
] as const) {
  t.test(`through ${name}: messages arrive in order, one at a time, many at once and batched as one array`, async (t) => {
    const { server, client, take } = await pair(t)
    const one = wsTransport(server, quietLog(), plain, reach)
    t.ok(one.open, 'open once the upgrade is done')
    one.write(message('a', 1))
    one.writeMany([message('b', 2)])
    one.writeMany([message('c', 3), message('d')])
    t.same(
      await take(4),
      ['a', 'b', 'c', 'd'].map((text) => JSON.stringify({ type: 'note', text }))
    )
    const batched = wsTransport(server, quietLog(), { deflate: undefined, batch: true }, reach)
    batched.writeMany([message('e'), message('f')])
    t.same(JSON.parse((await take(1))[0] as string), [
      { type: 'note', text: 'e' },
      { type: 'note', text: 'f' }
    ])
    t.equal(one.bufferedAmount, server.bufferedAmount, 'bytes waiting are the socket’s own')
    client.close(4321, 'bye')
    await once(server, 'close')
    t.notOk(one.open)
    one.write(message('lost'))
    one.writeMany([message('lost'), message('too')])
    one.ping()
    t.pass('writing to a closed transport does nothing and does not throw')
  })

  t.test(`through ${name}: with deflate on, small and large messages arrive intact`, async (t) => {
    const { server, take } = await pair(t, true)
    const settings: WsSettings = { deflate: { threshold: 64, level: 1 }, batch: false }
    const transport = wsTransport(server, quietLog(), settings, reach)
    const large = 'x'.repeat(5000)
    const shared = message(large, 1)
    transport.write(message('small'))
    transport.write(shared)
    transport.writeMany([message('small'), shared])
    const got = await take(4)
    t.same(
      got.map((m) => (JSON.parse(m) as { text: string }).text.length),
      [5, 5000, 5, 5000]
    )
    t.ok(transport.size(shared) > 0, 'a size for the queue bounds')
  })
}

t.test('the fallback counts a message at its payload size; the fast path at its frame, shared by every recipient', async (t) => {
  const { server } = await pair(t)
  const m = message('hello', 1)
  t.equal(wsTransport(server, quietLog(), plain, FALLBACK).size(m), m.payload.length)
  const fast = wsTransport(server, quietLog(), plain)
  t.equal(fast.size(m), m.payload.length + 2, 'a two-byte frame header')
  t.equal(
    m.encoded((x) => x.payload.length * 10),
    m.payload.length * 10,
    'another binding encodes its own way'
  )
  t.equal(
    m.encoded((x) => x.payload.length * 10 + 1),
    m.payload.length * 10 + 1
  )
  const again = fast.size(m)
  t.equal(again, m.payload.length + 2, 'the first encoding is kept beside the others')
})

t.test('the binding reports pongs as signs of life and the close exactly once, with code and reason', async (t) => {
  const { server, client } = await pair(t)
  const transport = wsTransport(server, quietLog(), plain)
  const seen: string[] = []
  const listener: TransportListener = {
    message: (data, isBinary) => seen.push(`message ${String(data)} ${isBinary}`),
    alive: () => seen.push('alive'),
    closed: (code, reason) => seen.push(`closed ${code} ${reason}`)
  }
  transport.listen(listener)
  transport.ping()
  await once(server, 'pong')
  client.send('{"type":"ping"}')
  await once(server, 'message')
  client.close(4000, 'done')
  await once(server, 'close')
  t.same(seen, ['alive', 'message {"type":"ping"} false', 'closed 4000 done'])
})

t.test('close() fits a long reason into 123 bytes and ends the connection even on a code no close frame may carry', async (t) => {
  const { server, client } = await pair(t)
  const log = quietLog()
  const transport = wsTransport(server, log, plain)
  const closed = once(client, 'close')
  transport.close(4010, 'é'.repeat(100))
  const [code, reason] = (await closed) as [number, Buffer]
  t.equal(code, 4010)
  t.ok(reason.length <= 123 && reason.length >= 122, `the reason was cut to ${reason.length} bytes`)

  const other = await pair(t)
  const refused = wsTransport(other.server, log, plain)
  const ended = once(other.client, 'close')
  refused.close(1005, '')
  const [endCode] = (await ended) as [number]
  t.equal(endCode, 1006, 'terminated')
  t.same(log.warnings, ['realtime close code refused; connection terminated'])
})

t.test('terminate() ends the connection at once', async (t) => {
  const { server, client } = await pair(t)
  const ended = once(client, 'close')
  wsTransport(server, quietLog(), plain).terminate()
  const [code] = (await ended) as [number]
  t.equal(code, 1006)
})

t.test('the binding falls back to send() when ws lacks its framing or the socket its stream', async (t) => {
  t.equal(framingOf({}), undefined, 'a ws module without Sender')
  t.equal(framingOf({ Sender: {} }), undefined, 'a Sender without frame()')
  t.equal(typeof framingOf(await import('ws')), 'function', 'the ws in use has it')
  const shape = { _socket: {} } as unknown as WebSocket
  t.same(reachInto(shape, undefined), FALLBACK, 'a socket whose stream cannot be written to')
  const { server } = await pair(t, true)
  t.equal(reachInto(server, undefined).window, 0, 'deflate off: frames go plain')
  t.equal(reachInto(server, { threshold: 0, level: 1 }).window, 15, 'the window the client agreed to')
})
