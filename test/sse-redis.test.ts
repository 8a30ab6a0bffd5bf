// SSE across instances on a real Redis: a stream cut on one instance resumes on another from its Last-Event-ID, each
// room from where the id says, with nothing lost, nothing twice, and live events from every instance after.
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { redisAdapter } from '../src/adapters/redis.js'
import type { Frame } from './helpers/index.js'
import { requireRedis, startRedis } from './helpers/redis.js'
import { openStream, type SseClient, streamApp } from './helpers/sse.js'

const skip = requireRedis(t)
const thought = (content: string) => ({ type: 'agent:thought' as const, data: { runId: 'run', content } })

async function pair(t: Test): Promise<[FastifyInstance, FastifyInstance]> {
  const redis = await startRedis(t)
  const app = () => streamApp(t, { authorize: () => true, adapter: redisAdapter({ url: redis.url, keyPrefix: redis.prefix }) })
  return [await app(), await app()]
}

const contents = (frames: Frame[], room: string) => frames.filter((f) => f.room === room).map((f) => [f.seq, f.data.content])

t.test('a stream cut on one instance resumes on another from Last-Event-ID, every room whole and once', { skip }, async (t) => {
  const [a, b] = await pair(t)
  const first = await openStream(a, 'alice', { rooms: ['run:1', 'run:2'] })
  await first.collect('subscribed', 2)
  // Emits from both instances, before the cut.
  await a.realtime.emit('run:1', thought('a1'))
  await b.realtime.emit('run:2', thought('b1'))
  await b.realtime.emit('run:1', thought('b2'))
  await first.collect('agent:thought', 3)
  const lastId = first.lastId
  first.cut()
  // Missed while no stream is open, from both instances.
  await b.realtime.emit('run:1', thought('b3'))
  await a.realtime.emit('run:2', thought('a4'))
  await b.realtime.emit('run:2', thought('b5'))

  const resumed: SseClient = await openStream(b, 'alice', { lastEventId: lastId })
  t.same(
    (await resumed.collect('subscribed', 2)).map((f) => [f.room, f.data.recovered]),
    [
      ['run:1', true],
      ['run:2', true]
    ],
    'both rooms named by the id, recovered'
  )
  const missed = await resumed.collect('agent:thought', 3)
  t.same(contents(missed, 'run:1'), [[3, 'b3']])
  t.same(contents(missed, 'run:2'), [
    [2, 'a4'],
    [3, 'b5']
  ])
  // Live again, from the other instance; the marker shows nothing came twice before it.
  await a.realtime.emit('run:1', thought('a6'))
  t.same(contents([await resumed.next('agent:thought')], 'run:1'), [[4, 'a6']])
  t.same(resumed.frames, [], 'nothing twice')
  t.match(resumed.lastId, /^run:1~\S+~4 run:2~\S+~3$/, 'the id names both rooms at their last seq')
  resumed.cut()
})

t.test('a server-side join on one instance reaches a stream on the other, and its id then names the room', { skip }, async (t) => {
  const [a, b] = await pair(t)
  const stream = await openStream(b, 'bob')
  await a.realtime.join({ user: 'bob' }, 'project:7')
  t.match(await stream.next('subscribed'), { room: 'project:7' })
  await a.realtime.emit('project:7', thought('hello'))
  t.same(contents([await stream.next('agent:thought')], 'project:7'), [[1, 'hello']])
  t.match(stream.lastId, /^project:7~\S+~1$/)
  stream.cut()
})
