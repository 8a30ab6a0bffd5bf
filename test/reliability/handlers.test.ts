// Reliability 6: throwing, rejecting and slow handlers, and handlers that finish after their connection closed.
import fc from 'fast-check'
import t from 'tap'
import { Type } from '../../src/index.js'
import { buildApp, connect, delay, type TestClient } from '../helpers/index.js'

const MESSAGES = 1000
const SECRET_TEXT = 'password=hunter2'

t.test(`${MESSAGES} random messages to failing and slow handlers: alive, each answered, nothing leaked`, async (t) => {
  t.equal(process.execArgv.includes('--unhandled-rejections=strict'), true, 'running with --unhandled-rejections=strict')
  const app = await buildApp(t, { limits: { burst: 10_000, messagesPerSecond: 10_000 } })
  const any = Type.Object({ wait: Type.Integer({ minimum: 0, maximum: 20 }) })
  app.realtime.handle('sync-throw', any, () => {
    throw new Error(`db failed: ${SECRET_TEXT}`)
  })
  app.realtime.handle('reject', any, async ({ data }) => {
    await delay(data.wait)
    throw new TypeError(`cannot read ${SECRET_TEXT}`)
  })
  app.realtime.handle('slow', any, async ({ data }) => {
    await delay(data.wait)
    return { ok: true }
  })
  app.realtime.handle('after-close', any, async ({ connection, data }) => {
    connection.close(1000, 'done')
    await delay(data.wait)
    throw new Error(SECRET_TEXT)
  })
  const clients: TestClient[] = await Promise.all(Array.from({ length: 10 }, (_, i) => connect(app, `user${i}`)))
  const plan = fc.sample(
    fc.record({
      client: fc.integer({ min: 0, max: 9 }),
      type: fc.constantFrom('sync-throw', 'reject', 'slow', 'slow', 'after-close'),
      wait: fc.integer({ min: 0, max: 20 })
    }),
    { numRuns: MESSAGES, seed: 3 }
  )
  const expected = new Map<TestClient, Map<string, string>>()
  let closedByHandler = 0
  let answered = 0
  const everything: string[] = []
  async function drain(client: TestClient): Promise<void> {
    for (const [id, kind] of expected.get(client) ?? []) {
      const frame = await client.nextWhere((f) => f.id === id, `the answer to ${id}`, 5000)
      everything.push(JSON.stringify(frame))
      const got = frame.type === 'ack' ? 'ack' : frame.data?.code
      if (got !== kind) t.fail(`${id}: expected ${kind}, got ${JSON.stringify(frame)}`)
      answered++
    }
    expected.delete(client)
  }
  for (const [i, step] of plan.entries()) {
    let client = clients[step.client] as TestClient
    if (client.closeCode !== undefined || client.ws.readyState !== 1) {
      client = await connect(app, `user${step.client}`)
      clients[step.client] = client
    }
    const id = `m${i}`
    if (step.type === 'after-close') {
      // Everything asked on this connection is answered before the handler closes it.
      await drain(client)
      client.send({ type: step.type, id, data: { wait: step.wait } })
      closedByHandler++
      await client.closed
      continue
    }
    client.send({ type: step.type, id, data: { wait: step.wait } })
    const want = expected.get(client) ?? new Map<string, string>()
    want.set(id, step.type === 'slow' ? 'ack' : 'internal')
    expected.set(client, want)
  }
  for (const client of [...expected.keys()]) await drain(client)
  const replies = everything.join('\n')
  t.equal(answered, MESSAGES - closedByHandler, 'every message on an open connection was answered as expected')
  t.notOk(replies.includes(SECRET_TEXT) || / at .*\.ts:\d+/.test(replies), 'no secret and no stack in any reply')
  t.comment(
    `reliability/handlers: ${MESSAGES} messages, ${answered} answered (ack or internal), ${closedByHandler} handlers closed their connection first; process alive`
  )
})
