// Rooms for real user ids: what identity providers issue (Auth0, Google, emails, Unicode names) subscribes to its
// own room `user:<sub>`, and `ask({ user })` reaches it, on the memory and the Redis adapters.
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { userRoom } from '../src/index.js'
import { startChild } from './helpers/child.js'
import { requireRedis, startRedis } from './helpers/redis.js'

const SUBJECTS = ['auth0|5f7c8ab1e2d3c4b5a6978899', 'google-oauth2|112233445566778899001', 'a+b@example.com', 'Jörg', 'Ana María López']

async function ownRooms(t: Test, server: Awaited<ReturnType<typeof startChild>>): Promise<void> {
  for (const sub of [...SUBJECTS, 'tab\there{}', '~tilde']) {
    const client = await server.connect(sub)
    const room = userRoom(sub)
    const answer = await client.subscribe(room)
    t.equal(answer.type, 'subscribed', `${JSON.stringify(sub)} subscribes to its own room ${JSON.stringify(room)}`)
    const asked = server.post('/ask', { user: sub })
    const question = await client.next('hitl_request')
    client.send({ type: 'reply', id: question.id, room, data: { ok: sub } })
    const reply = await asked
    t.equal(reply.status, 200)
    t.same((await reply.json()).answer, { ok: sub }, 'ask({ user }) reaches it and gets the answer')
    await client.close()
  }
  t.equal(userRoom('Jörg'), 'user:Jörg', 'a subject the pattern accepts is used as it is')
  t.equal(userRoom('~tilde'), `user:~${Buffer.from('~tilde').toString('base64url')}`, 'others are base64url-encoded after ~')
}

t.test('user ids from Auth0, Google, email and Unicode names have their own room (memory adapter)', async (t) => {
  const server = await startChild(t, 'hostile-server.ts')
  await ownRooms(t, server)
  const alice = await server.connect('alice')
  const bad = await alice.call({ type: 'subscribe', id: 'c', room: 'user:a\u0000b' })
  t.equal(bad.data.code, 'invalid_room', 'control characters are still refused')
  const braces = await alice.call({ type: 'subscribe', id: 'b', room: 'room{1}' })
  t.equal(braces.data.code, 'invalid_room', 'so are the Redis hash-tag braces')
})

t.test('user ids from Auth0, Google, email and Unicode names have their own room (Redis adapter)', { skip: requireRedis(t) }, async (t) => {
  const redis = await startRedis(t)
  const server = await startChild(t, 'hostile-server.ts', ['redis', redis.url, `ids${randomBytes(4).toString('hex')}:`])
  await ownRooms(t, server)
})
