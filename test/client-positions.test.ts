// Positions an application can keep: positions() and subscribe(room, handler, { since, epoch }).
import t from 'tap'
import { sdk, until } from './helpers/client.js'
import { buildApp, sign } from './helpers/index.js'

const thought = (content: string) => ({ type: 'agent:thought' as const, data: { runId: 'r', content } })

t.test('positions() gives room → seq and epoch; a new client given them resumes with nothing lost or repeated', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const first = sdk(t, app, { token: sign('alice') })
  const seen: number[] = []
  let subscribed = false
  first.subscribe('workflow:1', (e) => seen.push(e.seq as number), { onSubscribed: () => (subscribed = true) })
  t.same(first.positions(), {}, 'no position before subscribed')
  await until(() => subscribed)
  for (let n = 1; n <= 3; n++) await app.realtime.emit('workflow:1', thought(String(n)))
  await until(() => seen.length === 3)
  const saved = JSON.parse(JSON.stringify(first.positions()))
  t.match(saved, { 'workflow:1': { seq: 3, epoch: /\w+/ } })
  first.close()

  // What a reloaded page does: events go on meanwhile, then a new client resumes from the saved position.
  for (let n = 4; n <= 5; n++) await app.realtime.emit('workflow:1', thought(String(n)))
  const second = sdk(t, app, { token: sign('alice') })
  const resumed: number[] = []
  const infos: unknown[] = []
  const { seq, epoch } = saved['workflow:1']
  second.subscribe('workflow:1', (e) => resumed.push(e.seq as number), { since: seq, epoch, onSubscribed: (i) => infos.push(i) })
  await until(() => resumed.length === 2)
  t.match(infos, [{ recovered: true }])
  await app.realtime.emit('workflow:1', thought('6'))
  await until(() => resumed.length === 3)
  t.same(resumed, [4, 5, 6], 'the missed events once, then live')
  t.same(second.positions()['workflow:1']?.seq, 6)
})

t.test('a saved position from another epoch (a history lost) is answered recovered: false', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  await app.realtime.emit('workflow:2', thought('1'))
  const client = sdk(t, app, { token: sign('alice') })
  const infos: unknown[] = []
  const seen: number[] = []
  client.subscribe('workflow:2', (e) => seen.push(e.seq as number), { since: 1, epoch: 'gone', onSubscribed: (i) => infos.push(i) })
  await until(() => infos.length === 1)
  t.match(infos, [{ recovered: false, seq: 1 }])
  await app.realtime.emit('workflow:2', thought('2'))
  await until(() => seen.length === 1)
  t.same(seen, [2])
})
