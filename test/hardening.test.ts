// Nothing an app hook or a client does can take the server down. Each server runs in its own process with Node's
// default handling of unhandled rejections, so an escaped one would end it: every test ends by checking that the
// process answers a later ping and is still running.

import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { startChild } from './helpers/child.js'
import { sign, type TestClient } from './helpers/index.js'
import { closeCodeOf, rawUpgrade } from './helpers/raw.js'

// One server for the whole file: each test uses its own rooms and users.
const server = await startChild(t, 'hostile-server.ts')

async function stillServing(t: Test, client: TestClient, alive: () => boolean): Promise<void> {
  const pong = await client.call({ type: 'ping', id: 'marker' })
  t.equal(pong.type, 'pong', 'the connection still answers')
  t.ok(alive(), 'the process is still running')
}

t.test('a presence predicate that throws answers the presence request with internal and the process lives', async (t) => {
  const alice = await server.connect('alice')
  const reply = await alice.call({ type: 'presence', id: '1', room: 'x1' })
  t.equal(reply.type, 'error')
  t.equal(reply.data.code, 'internal')
  t.ok(await server.log((r) => r.msg === 'realtime presence predicate failed' && r.room === 'x1'), 'the failure is logged with its room')
  const subscribe = await alice.call({ type: 'subscribe', id: '2', room: 'x2' })
  t.equal(subscribe.data.code, 'internal', 'a subscribe to such a room fails as a whole')
  await stillServing(t, alice, server.alive)
})

t.test('a presenceInfo that returns a BigInt leaves the user present without info and the process lives', async (t) => {
  const alice = await server.connect('bigint')
  t.equal((await alice.subscribe('doc:big')).type, 'subscribed')
  const members = await alice.call({ type: 'presence', id: 'p', room: 'doc:big' })
  t.same(members.data, { members: [{ user: 'bigint', connections: 1 }] })
  t.ok(await server.log((r) => r.msg === 'realtime presenceInfo failed'), 'the failure is logged')
  await stillServing(t, alice, server.alive)
})

t.test('a presenceInfo that throws gives one answer, subscribed, and the join is announced', async (t) => {
  const bob = await server.connect('bob')
  t.equal((await bob.subscribe('doc:1')).type, 'subscribed')
  const alice = await server.connect('noinfo')
  const answer = await alice.call({ type: 'subscribe', id: 's', room: 'doc:1' })
  t.equal(answer.type, 'subscribed')
  const join = await bob.nextWhere((f) => f.type === 'join' && f.data?.user === 'noinfo', 'the join of the user')
  t.equal(join.data.info, undefined, 'present without info')
  await stillServing(t, alice, server.alive)
  t.notOk(
    alice.frames.some((f) => f.id === 's'),
    'no second answer for the subscribe'
  )
  t.equal((await server.post('/emit', { room: 'doc:1', text: 'hello' })).status, 200)
  t.equal((await alice.next('agent:thought')).data.content, 'hello', 'alice receives the room')
})

t.test('a RealtimeError whose message cannot become a string is answered internal and the process lives', async (t) => {
  const alice = await server.connect('alice')
  const reply = await alice.call({ type: 'unreadable', id: 'u', data: {} })
  t.equal(reply.type, 'error')
  t.equal(reply.data.code, 'internal')
  const trapped = await alice.call({ type: 'trap', id: 't', data: {} })
  t.equal(trapped.data.code, 'internal', 'so is a thrown value none of whose properties can be read')
  const refused = await alice.call({ type: 'refuse', id: 'r', data: {} })
  t.same(refused.data, { code: 'quota', message: 'over quota' }, 'a readable RealtimeError still reaches the client')
  await stillServing(t, alice, server.alive)
})

t.test('hooks that hang or return what JSON cannot hold get one clear error each, within hookTimeout', async (t) => {
  const alice = await server.connect('alice')
  const started = Date.now()
  const [hang, bigint, denied, snapHang, snapBig] = await Promise.all([
    alice.call({ type: 'hang', id: 'h', data: {} }),
    alice.call({ type: 'bigint', id: 'b', data: {} }),
    alice.call({ type: 'subscribe', id: 'a', room: 'hang:authorize' }),
    alice.call({ type: 'subscribe', id: 'sh', room: 'snap:hang' }),
    alice.call({ type: 'subscribe', id: 'sb', room: 'snap:bigint' })
  ])
  t.ok(Date.now() - started < 2500, 'answered within the timeout, not left waiting')
  t.same([hang.data.code, bigint.data.code], ['internal', 'internal'], 'handlers: internal')
  t.equal(denied.data.code, 'forbidden', 'an authorize that hangs denies')
  t.same([snapHang.data.code, snapBig.data.code], ['internal', 'internal'], 'snapshots: the subscribe fails')
  await server.log(() => server.logs.filter((l) => l.err?.type === 'HookTimeoutError').length >= 3)
  t.pass('each of the three timeouts is logged')
  t.equal((await server.post('/emit', { room: 'snap:bigint', text: 'not for alice' })).status, 200)
  await stillServing(t, alice, server.alive)
  t.notOk(
    alice.frames.some((f) => f.room === 'snap:bigint' || f.room === 'snap:hang'),
    'a failed subscribe leaves nothing behind'
  )
  const stats = await server.get('/stats')
  t.ok(stats.subscriptions >= 0, 'stats still answer')
})

/** A masked client frame of at most 125 bytes. */
function clientFrame(fin: boolean, opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4)
  const masked = Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] as number)))
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | payload.length]), mask, masked])
}

/** `text` as one message in one-byte fragments. */
function fragments(text: string, finish: boolean): Buffer {
  const bytes = Buffer.from(text)
  const frames: Buffer[] = []
  for (let i = 0; i < bytes.length; i++) {
    const last = finish && i === bytes.length - 1
    frames.push(clientFrame(last, i === 0 ? 0x1 : 0x0, bytes.subarray(i, i + 1)))
  }
  return Buffer.concat(frames)
}

t.test('a message in more fragments than limits.maxFragments closes with 1008; one within it is read whole', async (t) => {
  const whole = await rawUpgrade(server.port, { authorization: `Bearer ${sign('mallory')}` })
  t.equal(whole.status, 101)
  const ping = '{"type":"ping","id":"f"}'
  t.ok(ping.length < 64, 'within the default limit of 64 fragments')
  whole.socket.write(fragments(ping, true))
  const pong = await new Promise<string>((resolve) => {
    let seen = whole.rest.toString('latin1')
    const look = (chunk?: Buffer) => {
      if (chunk !== undefined) seen += chunk.toString('latin1')
      if (seen.includes('"pong"')) resolve(seen)
    }
    whole.socket.on('data', look)
    look()
  })
  t.match(pong, /"type":"pong","id":"f"/)
  whole.socket.destroy()

  const attack = await rawUpgrade(server.port, { authorization: `Bearer ${sign('mallory')}` })
  attack.socket.write(fragments('x'.repeat(16_000), false))
  t.equal(await closeCodeOf(attack.socket, attack.rest, 5000), 1008, 'closed as a policy violation, long before 16 000 fragments')
  const alice = await server.connect('alice')
  await stillServing(t, alice, server.alive)
})
