// Reliability 5: with the default authorize, no user receives another user's events.
import t from 'tap'
import { buildApp, connect } from '../helpers/index.js'

t.test('50 users each subscribing to every other user room: 0 events delivered across users', async (t) => {
  const app = await buildApp(t, { limits: { burst: 100 } })
  const users = Array.from({ length: 50 }, (_, i) => `tenant${i}`)
  const clients = await Promise.all(users.map((u) => connect(app, u)))
  let denied = 0
  let granted = 0
  await Promise.all(
    clients.map(async (client, i) => {
      for (const other of users) {
        const reply = await client.subscribe(`user:${other}`)
        if (reply.type === 'subscribed') {
          granted++
          if (other !== users[i]) t.fail(`${users[i]} was granted user:${other}`)
        } else if (reply.data.code === 'forbidden') denied++
      }
    })
  )
  for (const user of users)
    await app.realtime.emit(`user:${user}`, { type: 'agent:thought', data: { runId: user, content: `for ${user}` } })
  // A second round marks the end of the first: an event of the first round for another user, had any been let
  // through, would have reached its client before that client's marker.
  for (const user of users) await app.realtime.emit(`user:${user}`, { type: 'agent:thought', data: { runId: user, content: 'marker' } })
  await Promise.all(clients.map((client) => client.nextWhere((f) => f.data?.content === 'marker', 'the marker')))
  let crossed = 0
  for (const [i, client] of clients.entries()) {
    const events = client.frames.filter((f) => f.type === 'agent:thought')
    crossed += events.filter((e) => e.room !== `user:${users[i]}`).length
    t.equal(events.length, 1, `${users[i]} got its own event only`)
  }
  t.equal(granted, 50)
  t.equal(denied, 50 * 49)
  t.equal(crossed, 0, '0 events delivered across users')
  t.comment(`reliability/cross-tenant: ${denied} subscriptions denied, ${granted} granted, ${crossed} events across users`)
})
