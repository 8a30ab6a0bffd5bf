// Reliability 2: generated JSON values and mutations of valid envelopes.
import { Value } from '@sinclair/typebox/value'
import fc from 'fast-check'
import t from 'tap'
import { Type } from '../../src/index.js'
import { buildApp, connect, type Frame } from '../helpers/index.js'

const MESSAGES = 10_000
const Echo = Type.Object({ text: Type.String({ maxLength: 100 }) }, { additionalProperties: false })

function deep(depth: number): string {
  return `${'['.repeat(depth)}${']'.repeat(depth)}`
}

t.test(
  `${MESSAGES} invalid or mutated envelopes: one answer each, handlers never see invalid data, Object.prototype untouched`,
  async (t) => {
    const app = await buildApp(t, {
      authorize: () => true,
      limits: { burst: 100_000, messagesPerSecond: 100_000, maxInvalidMessages: 1_000_000 }
    })
    let calls = 0
    let invalidCalls = 0
    app.realtime.handle('echo', Echo, ({ data }) => {
      calls++
      if (!Value.Check(Echo, data)) invalidCalls++
      return data
    })
    const client = await connect(app)
    const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).join(',')

    const valid = fc.record({
      type: fc.constant('echo'),
      id: fc.string({ minLength: 1, maxLength: 8 }),
      data: fc.record({ text: fc.string({ maxLength: 20 }) })
    })
    const key = fc.constantFrom('__proto__', 'constructor', 'prototype', 'type', 'id', 'room', 'data', 'error', 'extra')
    const mutation = fc.oneof(
      fc.tuple(valid, key, fc.jsonValue()).map(([env, k, v]) => JSON.stringify({ ...env, [k]: v })),
      fc.tuple(valid, key, fc.jsonValue()).map(([env, k, v]) => JSON.stringify(env).replace('{', `{"${k}":${JSON.stringify(v)},`)),
      fc.tuple(valid, fc.jsonValue()).map(([env, v]) => JSON.stringify({ ...env, data: v })),
      fc.tuple(valid, fc.integer({ min: 129, max: 4000 })).map(([env, n]) => JSON.stringify({ ...env, id: 'i'.repeat(n) })),
      fc
        .tuple(valid, fc.integer({ min: 10, max: 20_000 }))
        .map(([env, n]) => JSON.stringify({ ...env, data: { text: 'x' } }).replace('{"text":"x"}', deep(n))),
      fc
        .constantFrom('subscribe', 'unsubscribe', 'ping', 'auth', 'reply', 'presence', 'ack', 'ready')
        .chain((type) =>
          fc
            .record({ type: fc.constant(type), room: fc.jsonValue(), id: fc.jsonValue(), data: fc.jsonValue() }, { requiredKeys: ['type'] })
            .map((m) => JSON.stringify(m))
        )
    )
    const anyJson = fc.jsonValue().map((v) => JSON.stringify(v) ?? 'null')
    const text = fc.string({ maxLength: 200 })
    const binary = fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b))
    const messages = fc.sample(fc.oneof(mutation, mutation, anyJson, text, binary), { numRuns: MESSAGES, seed: 7 })

    const answers = new Map<string, number>()
    let silent = 0
    let sent = 0
    for (const [i, message] of messages.entries()) {
      if (Buffer.isBuffer(message)) client.ws.send(message, { binary: true })
      else client.ws.send(message)
      sent++
      // Two pings behind every message: a handler's ack is sent a microtask after the message, so it may follow the
      // first pong (both frames can arrive in one TCP chunk), but it always precedes the second.
      const about: Frame[] = []
      for (const sync of [`a-${i}`, `b-${i}`]) {
        client.send({ type: 'ping', id: sync })
        for (;;) {
          const frame = await client.next()
          if (frame.type === 'pong' && frame.id === sync) break
          about.push(frame)
        }
      }
      const parsed = (() => {
        try {
          return typeof message === 'string' ? JSON.parse(message) : undefined
        } catch {
          return undefined
        }
      })()
      // Only a valid application message without an id goes unanswered (fire and forget); everything else gets one answer.
      const fireAndForget =
        parsed?.type === 'echo' &&
        parsed.id === undefined &&
        Value.Check(Echo, parsed.data) &&
        Object.keys(parsed).every((k) => k === 'type' || k === 'data')
      if (about.length === 0 && fireAndForget) silent++
      else if (about.length !== 1)
        t.fail(`message ${i} got ${about.length} answers: ${String(message).slice(0, 120)} → ${JSON.stringify(about).slice(0, 200)}`)
      for (const frame of about) {
        const kind = frame.type === 'error' ? `error:${frame.data.code}` : frame.type
        answers.set(kind, (answers.get(kind) ?? 0) + 1)
      }
    }
    t.equal(sent, MESSAGES)
    t.equal(invalidCalls, 0, 'the handler never saw invalid data')
    t.equal(Object.getOwnPropertyNames(Object.prototype).join(','), prototypeBefore, 'Object.prototype is untouched')
    t.equal(({} as Record<string, unknown>).polluted, undefined)
    t.equal(client.closeCode, undefined, 'the connection stayed up throughout')
    t.comment(
      `reliability/invalid-envelopes: ${MESSAGES} messages; answers ${JSON.stringify(Object.fromEntries(answers))}; ${silent} valid fire-and-forget; ${calls} handler calls, 0 with invalid data`
    )
  }
)
