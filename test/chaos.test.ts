import t from 'tap'
import { sdk, until } from './helpers/client.js'
import { buildApp, delay, sign } from './helpers/index.js'

t.test('chaos: 20 clients, 1,000 events, a third of the sockets terminated every 50 events: each ends with 1..1000 once', async (t) => {
  const app = await buildApp(t, { authorize: () => true, history: { size: 1000 } })
  const received = Array.from({ length: 20 }, () => [] as number[])
  let recoveries = 0
  let fresh = 0
  let reconnects = 0
  const clients = received.map((seqs, i) => {
    const client = sdk(t, app, { token: () => sign(`user${i}`) })
    client.subscribe('workflow:chaos', (e) => seqs.push(e.seq as number), {
      onSubscribed: ({ recovered }) => {
        if (recovered) recoveries++
        else fresh++
      }
    })
    client.onStateChange((state) => {
      if (state === 'reconnecting') reconnects++
    })
    return client
  })
  // Deadlines are generous: on a loaded 2-core machine a round of reconnects can take seconds, and that proves nothing.
  await until(() => app.realtime.stats().subscriptions === 20, 30_000, 'every client subscribed')
  // Connected as the server sees it: a client may not have read the close of a socket terminated last round yet,
  // and terminating that one again would count a termination the client never goes through.
  const live = () => clients.filter((c) => c.connectionId !== undefined && app.realtime.connection(c.connectionId) !== undefined)

  let terminated = 0
  for (let n = 1; n <= 1000; n++) {
    await app.realtime.emit('workflow:chaos', { type: 'agent:thought', data: { runId: 'chaos', content: `event ${n}` } })
    if (n % 10 === 0) await delay(2)
    if (n % 50 === 0) {
      // A third of the 20 sockets each round: wait until that many are back from the previous round.
      await until(() => live().length >= 7, 30_000, 'seven connected clients')
      for (const client of live()
        .sort(() => Math.random() - 0.5)
        .slice(0, 7)) {
        const conn = app.realtime.connection(client.connectionId as string) as unknown as { terminate(why: string): void }
        conn.terminate('chaos')
        terminated++
      }
    }
  }
  await until(() => received.every((seqs) => seqs.length >= 1000), 60_000, 'every client to reach seq 1000')
  await delay(50)
  const expected = Array.from({ length: 1000 }, (_, i) => i + 1).join(',')
  t.equal(received.filter((seqs) => seqs.join(',') === expected).length, 20, 'every client saw 1..1000, in order, once each')
  t.equal(terminated, 140, 'seven sockets terminated in each of the 20 rounds')
  t.ok(reconnects >= terminated, `reconnects: ${reconnects}`)
  t.ok(recoveries >= 50, `resumes that replayed missed events or continued in place: ${recoveries}`)
  t.equal(fresh, 20, 'recovered: false only on each first subscribe, never on a resume')
  t.comment(`terminated ${terminated} sockets, ${reconnects} reconnects, ${recoveries} recovered resumes`)
})
