// The client SDK's rooms and messages: size limits, subscribes answered late, presence.
import t from 'tap'
import type WebSocket from 'ws'
import type { RealtimeClientError } from '../src/client/index.js'
import { Type } from '../src/index.js'
import { scriptedServer, sdk, until } from './helpers/client.js'
import { buildApp, delay, sign } from './helpers/index.js'

const thought = (content: string) => ({ type: 'agent:thought' as const, data: { runId: 'r', content } })

t.test('a message larger than the server accepts is refused by the client, and the connection stays', async (t) => {
  const app = await buildApp(t, { limits: { maxPayload: 2048 } })
  const seen: number[] = []
  app.realtime.handle('note', Type.Object({ text: Type.String() }), ({ data }) => {
    seen.push(data.text.length)
    return data.text.length
  })
  const client = sdk(t, app, { token: sign('alice') })
  const early = client.send('note', { text: 'é'.repeat(1500) })
  await t.rejects(
    early,
    { code: 'too_large', message: 'the message is larger than the server accepts (2048 bytes)' },
    'queued before ready, refused once the limit is known'
  )
  await until(() => client.state === 'open')
  const id = client.connectionId
  await t.rejects(client.send('note', { text: 'x'.repeat(3000) }), { code: 'too_large' })
  t.equal(await client.send('note', { text: 'x'.repeat(1500) }), 1500, 'a long message under the limit goes through')
  client.onRequest('hitl_request', () => ({ essay: 'y'.repeat(5000) }))
  await t.rejects(app.realtime.request(id as string, { type: 'hitl_request', data: { requestId: 'q', question: '?' } }), {
    code: 'FST_REALTIME_REQUEST_REJECTED',
    message: /too_large/
  })
  t.equal(client.connectionId, id, 'still the same connection')
  t.same(seen, [1500])
})

t.test('a late answer to an earlier subscribe neither fires onSubscribed twice nor revives a room left', async (t) => {
  let held: any
  const server = await scriptedServer(t, (socket) => {
    socket.send(JSON.stringify({ type: 'ready', data: { connectionId: 'c', userId: 'u', heartbeatMs: 10_000 } }))
    socket.on('message', (m) => {
      const msg = JSON.parse(String(m))
      const answer = (id: string, room: string, epoch: string) =>
        socket.send(JSON.stringify({ type: 'subscribed', id, room, data: { seq: 0, epoch, recovered: false } }))
      if (msg.type === 'unsubscribe') socket.send(JSON.stringify({ type: 'unsubscribed', id: msg.id, room: msg.room }))
      if (msg.type !== 'subscribe') return
      if (msg.room === 'gone') {
        // Answered only after the client has left the room.
        setTimeout(() => {
          answer(msg.id, 'gone', 'g1')
          socket.send(JSON.stringify({ type: 'agent:thought', room: 'gone', seq: 1, data: { runId: 'r', content: 'stale' }, ts: 't' }))
        }, 30)
      } else if (held === undefined) held = msg
      else {
        answer(held.id, 'r', 'old')
        answer(msg.id, 'r', 'new')
      }
    })
  })
  const client = sdk(t, server.url)
  await until(() => client.state === 'open')
  const infos: Array<{ epoch: string }> = []
  client.subscribe('r').unsubscribe()
  client.subscribe('r', undefined, { onSubscribed: (i) => infos.push(i) })
  const seen: unknown[] = []
  client.on('agent:thought', (e) => seen.push(e))
  client.subscribe('gone').unsubscribe()
  await delay(80)
  t.same(
    infos.map((i) => i.epoch),
    ['new'],
    'only the answer to the current subscribe counts'
  )
  t.same(seen, [], 'a late answer does not resubscribe a room the app left')
})

t.test('onPresence follows a room: the member list after every subscribed, then each join and leave, never as events', async (t) => {
  const app = await buildApp(t, { authorize: () => true, presence: true, presenceInfo: ({ user }) => ({ name: `N-${user.sub}` }) })
  const alice = sdk(t, app, { token: sign('alice') })
  const seen: Array<{ users: string[]; change: string | undefined }> = []
  const events: unknown[] = []
  const last = () => seen[seen.length - 1]
  alice.subscribe('doc:1', (e) => events.push(e), {
    onPresence: (members, change) =>
      seen.push({ users: members.map((m) => m.user).sort(), change: change && `${change.kind} ${change.member.user}` })
  })
  await until(() => last()?.users.includes('alice') === true, 5000, 'alice in her own list')
  t.equal(seen[0]?.change, undefined, 'the first call has the list, no change')

  const bob = sdk(t, app, { token: sign('bob') })
  bob.subscribe('doc:1')
  await until(() => last()?.change === 'join bob', 5000, 'join bob')
  t.same(last()?.users, ['alice', 'bob'])
  const members = await alice.presence('doc:1')
  t.same(
    members.sort((a, b) => a.user.localeCompare(b.user)),
    [
      { user: 'alice', connections: 1, info: { name: 'N-alice' } },
      { user: 'bob', connections: 1, info: { name: 'N-bob' } }
    ]
  )

  const lists = () => seen.filter((s) => s.change === undefined).length
  const before = lists()
  app.realtime.connection(alice.connectionId as string)?.close(1012)
  await until(() => lists() === before + 1 && last()?.users.join() === 'alice,bob', 5000, 'the list asked again after the reconnect')

  bob.close()
  await until(() => last()?.change === 'leave bob', 5000, 'leave bob')
  t.same(last()?.users, ['alice'])
  t.same(events, [], 'join, leave and the member list never reach the event handler')
})

t.test('presence refused: onError gets forbidden and the subscription stays; presence() of a room not held is refused', async (t) => {
  const app = await buildApp(t, { authorize: () => true, presence: (room) => room.startsWith('doc:') })
  const client = sdk(t, app, { token: sign('alice') })
  const errors: RealtimeClientError[] = []
  const events: unknown[] = []
  client.subscribe('plain', (e) => events.push(e), {
    onPresence: () => t.fail('presence is off for this room'),
    onError: (e) => errors.push(e)
  })
  await until(() => errors.length === 1)
  t.match(errors[0], { code: 'forbidden', message: 'presence is not enabled for "plain"' })
  await app.realtime.emit('plain', thought('still subscribed'))
  await until(() => events.length === 1)
  await t.rejects(client.presence('doc:2'), { code: 'forbidden', message: 'subscribe to "doc:2" before asking its presence' })
  client.close()
  await t.rejects(client.presence('doc:2'), { code: 'closed' })
})

/** A scripted server's answers to subscribe, and `ready` on connect. */
function presenceScript(onPresence: (msg: any, send: (frame: object) => void, connection: number, socket: WebSocket) => void) {
  let connections = 0
  return (socket: WebSocket) => {
    const connection = ++connections
    const send = (frame: object) => socket.send(JSON.stringify(frame))
    send({ type: 'ready', data: { connectionId: `c${connection}`, userId: 'alice', heartbeatMs: 10_000 } })
    socket.on('message', (m) => {
      const msg = JSON.parse(String(m))
      if (msg.type === 'subscribe') send({ type: 'subscribed', id: msg.id, room: msg.room, data: { seq: 0, epoch: 'e', recovered: false } })
      if (msg.type === 'presence') onPresence(msg, send, connection, socket)
    })
  }
}

t.test('a join or leave that overtakes the member list is applied on top of it; answers for a room left are ignored', async (t) => {
  const member = (user: string) => ({ user, connections: 1 })
  const server = await scriptedServer(
    t,
    presenceScript((msg, send) => {
      if (msg.room === 'early') {
        send({ type: 'join', room: 'nowhere', data: member('zoe') })
        send({ type: 'join', room: 'plain', data: member('zoe') })
        send({ type: 'join', room: 'early', data: member('bob') })
        send({ type: 'leave', room: 'early', data: { user: 'carol', connections: 0 } })
        send({ type: 'presence', id: msg.id, room: 'early', data: { members: [member('alice'), member('carol')] } })
        send({ type: 'leave', room: 'early', data: { user: 'alice', connections: 0 } })
      } else if (msg.room === 'gone') send({ type: 'presence', id: msg.id, room: 'gone', data: { members: [member('alice')] } })
      else send({ type: 'error', id: msg.id, room: msg.room, data: { code: 'forbidden', message: 'no' } })
    })
  )
  const client = sdk(t, server.url)
  const seen: string[] = []
  const errors: unknown[] = []
  const report = (room: string) => ({
    onPresence: (members: Array<{ user: string }>, change?: { kind: string; member: { user: string } }) =>
      seen.push(`${room}: ${members.map((m) => m.user).join(',')}${change ? ` (${change.kind} ${change.member.user})` : ''}`),
    onError: (e: unknown) => errors.push(e)
  })
  client.subscribe('plain')
  client.subscribe('early', undefined, report('early'))
  for (const room of ['gone', 'gone-error']) {
    const sub = client.subscribe(room, undefined, { ...report(room), onSubscribed: () => sub.unsubscribe() })
  }
  await until(() => seen.length === 2)
  await delay(30)
  t.same(seen, ['early: alice,bob', 'early: bob (leave alice)'])
  t.same(errors, [], 'the refusal for a room already left is not reported')
})

t.test('a member list lost with the connection is asked again; one pending at close() is dropped quietly', async (t) => {
  const server = await scriptedServer(
    t,
    presenceScript((msg, send, connection, socket) => {
      if (msg.room === 'slow') return // never answered
      if (connection === 1) socket.close(4000, 'test')
      else send({ type: 'presence', id: msg.id, room: msg.room, data: { members: [{ user: 'alice', connections: 1 }] } })
    })
  )
  // The server closes the first connection (with a code that says reconnect) when it is asked the member list.
  const client = sdk(t, server.url)
  const seen: string[][] = []
  const errors: unknown[] = []
  client.subscribe('slow', undefined, { onPresence: () => t.fail('never answered'), onError: (e) => errors.push(e) })
  client.subscribe('drop', undefined, { onPresence: (m) => seen.push(m.map((x) => x.user)), onError: (e) => errors.push(e) })
  await until(() => seen.length === 1)
  t.same(seen, [['alice']])
  t.equal(client.connectionId, 'c2')
  await t.rejects(client.presence('slow', { timeout: 30 }), { code: 'timeout', message: 'no ack for "presence" within 30 ms' })
  client.close()
  await delay(20)
  t.same(errors, [], 'neither the lost nor the closed request is reported')
})
