// Reliability 3: abusive upgrade requests are refused with 400 or 431, nothing is accepted, the process lives.
import { connect as tcpConnect } from 'node:net'
import t from 'tap'
import { buildApp, connect, logCapture, sign } from '../helpers/index.js'

/** Sends a raw request and resolves with the status code of the answer (0 when the server just closed). */
function rawRequest(port: number, request: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1')
    let answer = ''
    socket.on('data', (c: Buffer) => {
      answer += c.toString('latin1')
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0)))
    socket.write(request)
    socket.end()
  })
}

t.test('2,000-header upgrades, a 32,000-space subprotocol header and bad keys: 400/431, 0 connections', async (t) => {
  const logs = logCapture('info')
  const app = await buildApp(t, {}, { fastify: logs.fastify })
  const { port } = app.server.address() as { port: number }
  const token = sign('alice')
  const head = (extra: string[], key = 'dGhlIHNhbXBsZSBub25jZQ==') =>
    [
      'GET /ws HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Key: ${key}`,
      `Authorization: Bearer ${token}`,
      ...extra,
      '',
      ''
    ].join('\r\n')
  const cases: Array<[string, string]> = [
    ['2,000 headers', head(Array.from({ length: 2000 }, (_, i) => `X-Filler-${i}: ${i}`))],
    ['a 32,000-space Sec-WebSocket-Protocol', head([`Sec-WebSocket-Protocol: realtime.v1,${' '.repeat(32_000)}x`])],
    ['a key of the wrong length', head([], 'c2hvcnQ=')],
    ['a key that is not base64', head([], '!!!!!!!!!!!!!!!!!!!!!!==')],
    ['no key', head([]).replace(/Sec-WebSocket-Key: [^\r]+\r\n/, '')],
    ['a wrong version', head([]).replace('Sec-WebSocket-Version: 13', 'Sec-WebSocket-Version: 99')],
    ['an upgrade to something else', head([]).replace('Upgrade: websocket', 'Upgrade: h2c')]
  ]
  const statuses: Record<string, number> = {}
  const timings: number[] = []
  for (const [name, request] of cases) {
    const started = performance.now()
    statuses[name] = await rawRequest(port, request)
    timings.push(performance.now() - started)
  }
  for (const [name, status] of Object.entries(statuses)) t.ok([400, 431].includes(status), `${name} → ${status}`)
  t.equal(app.realtime.stats().connections, 0, '0 connections accepted')
  t.notOk(logs.records().some((r) => r.msg === 'realtime connection opened'))
  const healthy = await connect(app, 'bob')
  t.equal(healthy.ready.data.userId, 'bob', 'the server still serves a normal client')
  t.comment(`reliability/handshake-abuse: ${JSON.stringify(statuses)}; slowest answer ${Math.max(...timings).toFixed(1)} ms`)
})
