// npm run bench:memory [-- --connections 50] [--dry: print only]
// How much server memory a client can pin, per connection and per byte it sends, for each hostile pattern, at the
// default limits. The server runs in a process of its own (--expose-gc); for each pattern, `--connections` clients
// (each its own user, so the per-user cap does not stop them) do it at once, and the server's heap + external memory
// after a full GC is compared with before. Writes bench/results/memory-pin.md.
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { type Socket, connect as tcpConnect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { createSigner } from 'fast-jwt'

const SECRET = 'memory-bench-secret-that-is-long-enough!!'
const flag = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? fallback : Number(process.argv[at + 1])
}

interface Sample {
  heap: number
  external: number
  connections: number
}

if (process.argv.includes('--server')) {
  const { default: Fastify } = await import('fastify')
  const { default: realtime } = await import('../src/index.js')
  const app = Fastify()
  await app.register(realtime, {
    jwt: { secret: SECRET },
    // Subscribes to `hang:` rooms wait on an authorize that answers only after hookTimeout.
    hookTimeout: 120_000,
    authorize: ({ room }) => (room.startsWith('hang:') ? new Promise<boolean>(() => {}) : true)
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const sample = (): Sample => {
    global.gc?.()
    global.gc?.()
    const m = process.memoryUsage()
    return { heap: m.heapUsed, external: m.external, connections: app.realtime.stats().connections }
  }
  process.on('message', async (m: { id: number; op: 'sample' | 'flood'; events?: number; size?: number }) => {
    if (m.op === 'sample') process.send?.({ id: m.id, sample: sample() })
    if (m.op === 'flood') {
      // Events one per turn into the room the slow readers hold; the highest memory seen meanwhile (no GC).
      const content = 'x'.repeat(m.size as number)
      let peak = 0
      for (let i = 0; i < (m.events as number); i++) {
        app.realtime.emit('flood', { type: 'agent:thought', data: { runId: 'r', content } }).catch(() => {})
        if (i % 50 === 0) {
          const u = process.memoryUsage()
          peak = Math.max(peak, u.heapUsed + u.external)
        }
        await new Promise((resolve) => setImmediate(resolve))
      }
      process.send?.({ id: m.id, peak, sample: sample() })
    }
  })
  process.send?.({ port: (app.server.address() as { port: number }).port })
} else {
  const n = flag('connections', 50)
  const child = fork(fileURLToPath(import.meta.url), ['--server'], { execArgv: ['--import', 'tsx', '--expose-gc'] })
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)))
  let ids = 0
  const ask = <T>(message: object): Promise<T> =>
    new Promise((resolve) => {
      const id = ids++
      const on = (m: { id?: number }) => {
        if (m.id !== id) return
        child.off('message', on)
        resolve(m as T)
      }
      child.on('message', on)
      child.send({ ...message, id })
    })
  const sample = async () => (await ask<{ sample: Sample }>({ op: 'sample' })).sample
  const sign = createSigner({ key: SECRET, expiresIn: 3_600_000 })
  let users = 0

  /** A masked client frame. */
  const frame = (opcode: number, fin: boolean, payload: Buffer, length = payload.length): Buffer => {
    const mask = randomBytes(4)
    const head = length < 126 ? Buffer.from([0, length]) : Buffer.from([0, 126, length >> 8, length & 0xff])
    head[0] = (fin ? 0x80 : 0) | opcode
    head[1] = (head[1] as number) | 0x80
    const body = Buffer.from(payload)
    for (let i = 0; i < body.length; i++) body[i] = (body[i] as number) ^ (mask[i % 4] as number)
    return Buffer.concat([head, mask, body])
  }

  /** An authenticated upgrade over raw TCP; resolves once `ready` came. The socket is left to the pattern. */
  const open = (): Promise<Socket> =>
    new Promise((resolve, reject) => {
      const socket = tcpConnect(port, '127.0.0.1')
      let seen = ''
      const onData = (chunk: Buffer) => {
        seen += chunk.toString('latin1')
        if (!seen.includes('"ready"')) return
        socket.off('data', onData)
        resolve(socket)
      }
      socket.on('data', onData)
      socket.on('error', reject)
      const key = randomBytes(16).toString('base64')
      socket.write(
        [
          'GET /ws HTTP/1.1',
          `Host: 127.0.0.1:${port}`,
          'Connection: Upgrade',
          'Upgrade: websocket',
          'Sec-WebSocket-Version: 13',
          `Sec-WebSocket-Key: ${key}`,
          'Sec-WebSocket-Protocol: realtime.v1',
          `Authorization: Bearer ${sign({ sub: `m${users++}` })}`,
          '',
          ''
        ].join('\r\n')
      )
    })

  const json = (value: object) => frame(1, true, Buffer.from(JSON.stringify(value)))

  interface Pattern {
    name: string
    /** What each connection does after `ready`; resolves with the bytes it sent after the upgrade. */
    act(socket: Socket, i: number): Promise<number> | number
    /** What bounds it, as documented. */
    bound: string
  }

  const settle = () => new Promise((resolve) => setTimeout(resolve, 500))
  const patterns: Pattern[] = [
    { name: 'an idle authenticated connection', act: () => 0, bound: '`limits.connectionsPerUser` (32) and `limits.connections`' },
    {
      name: 'an unfinished message in 63 fragments of 1 KiB',
      act: (socket) => {
        let sent = 0
        for (let f = 0; f < 63; f++) {
          const bytes = frame(f === 0 ? 1 : 0, false, Buffer.alloc(1024, 0x61))
          socket.write(bytes)
          sent += bytes.length
        }
        return sent
      },
      bound: '`limits.maxFragments` (64) and `limits.maxPayload` (64 KiB)'
    },
    {
      name: 'one frame of 64 KiB, all but its last byte',
      act: (socket) => {
        const whole = frame(1, true, Buffer.alloc(65_535, 0x61))
        socket.write(whole.subarray(0, whole.length - 1))
        return whole.length - 1
      },
      bound: '`limits.maxPayload` (64 KiB)'
    },
    {
      name: '40 subscribes waiting on an authorize that hangs',
      act: (socket, i) => {
        let sent = 0
        for (let s = 0; s < 40; s++) {
          const bytes = json({ type: 'subscribe', id: `s${s}`, room: `hang:${i}:${s}` })
          socket.write(bytes)
          sent += bytes.length
        }
        return sent
      },
      bound: '`burst` (40), `limits.roomsPerConnection` (128), `hookTimeout`'
    }
  ]

  const rows: string[] = []
  const fmt = (bytes: number) => `${Math.round(bytes).toLocaleString('en-US')} B`
  /** What an idle connection holds (the first pattern): the rest pin this much more. */
  let idle = 0
  const row = (name: string, bytes: number, perConnection: number, open: string, bound: string) => {
    const beyond = perConnection - idle
    const ratio = bytes === 0 ? '—' : (beyond / bytes).toFixed(beyond / bytes >= 10 ? 0 : 2)
    rows.push(
      `| ${name} | ${fmt(bytes)} | ${fmt(perConnection)} | ${fmt(beyond)} | ${ratio} | ${fmt(perConnection * 32)} | ${open} | ${bound} |`
    )
  }
  for (const pattern of patterns) {
    const before = await sample()
    const sockets = await Promise.all(Array.from({ length: n }, () => open()))
    const sent = await Promise.all(sockets.map((s, i) => pattern.act(s, i)))
    await settle()
    const after = await sample()
    const perConnection = (after.heap + after.external - before.heap - before.external) / n
    const bytes = sent.reduce((a, b) => a + b, 0) / n
    if (rows.length === 0) idle = perConnection
    row(pattern.name, bytes, perConnection, `${after.connections - before.connections} of ${n}`, pattern.bound)
    for (const s of sockets) s.destroy()
    while ((await sample()).connections > 0) await settle()
  }

  // A reader that never reads while its room streams: the server queues for it until `limits.bufferedBytes`, then
  // closes it. The figure is the peak while flooding, not after GC.
  {
    const before = await sample()
    const sockets = await Promise.all(Array.from({ length: n }, () => open()))
    let sent = 0
    for (const s of sockets) {
      const bytes = json({ type: 'subscribe', id: 's', room: 'flood' })
      s.write(bytes)
      sent += bytes.length
      s.pause()
    }
    await settle()
    const flood = await ask<{ peak: number; sample: Sample }>({ op: 'flood', events: 3000, size: 1024 })
    const perConnection = (flood.peak - before.heap - before.external) / n
    const bytes = sent / n
    row(
      'a reader that never reads, its room streaming 3,000 events of 1 KiB (peak, before GC)',
      bytes,
      perConnection,
      `${flood.sample.connections - before.connections} of ${n}`,
      '`limits.bufferedBytes` (1 MiB) queued, then closed; the kernel holds the rest'
    )
    for (const s of sockets) s.destroy()
  }

  const table = [
    `Server memory a client can pin at the default limits, ${n} connections per pattern, each its own user; heap + external after a full GC, against before (\`npm run bench:memory\`, Node ${process.versions.node}).`,
    '',
    '| pattern | bytes sent per connection | server memory per connection | beyond an idle one | pinned per byte sent | × 32 connections of one user | still open | what bounds it |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows,
    ''
  ].join('\n')
  console.log(table)
  // `--dry` (the test's scaled-down run) leaves the recorded results alone.
  if (!process.argv.includes('--dry')) await writeFile(new URL('./results/memory-pin.md', import.meta.url), table)
  child.kill()
  process.exit(0)
}
