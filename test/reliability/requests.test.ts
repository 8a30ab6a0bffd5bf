// Reliability 10: server requests under every ordering of replies, disconnects and the timeout.
// fast-check's scheduler decides the order, so this drives the hub directly with stand-in connections;
// test/requests.test.ts covers the same paths over real sockets.

import fc from 'fast-check'
import type { FastifyBaseLogger } from 'fastify'
import t from 'tap'
import { memoryAdapter } from '../../src/adapters/memory.js'
import { resolveOptions } from '../../src/options.js'
import { plugAgentFeatures } from '../../src/server/agent.js'
import type { Connection } from '../../src/server/connection.js'
import { Hub, type PendingRequest } from '../../src/server/hub.js'
import { delay, SECRET } from '../helpers/index.js'

const RUNS = 1000
const TIMEOUT = 3

const silent = {
  info() {},
  warn() {},
  error() {},
  debug() {},
  trace() {},
  fatal() {},
  child: () => silent,
  level: 'silent'
} as unknown as FastifyBaseLogger

function standIn(id: string): Connection {
  const rooms = new Set<string>()
  const pending = new Set<PendingRequest>()
  return {
    id,
    userId: id,
    user: { sub: id },
    rooms,
    pending,
    joining: new Set(),
    addRoom: (room: string) => rooms.add(room),
    removeRoom: (room: string) => rooms.delete(room),
    addPending: (request: PendingRequest) => pending.add(request),
    removePending: (request: PendingRequest) => pending.delete(request),
    takePending() {
      const all = [...pending]
      pending.clear()
      return all
    },
    closed: false,
    log: silent,
    send: () => true,
    sendFrame() {},
    sendError() {}
  } as unknown as Connection
}

t.test(
  `${RUNS} orderings of reply, error reply, disconnect and timeout: each request settles exactly once, nothing pending after`,
  async (t) => {
    const opts = resolveOptions({ jwt: { secret: SECRET } })
    const outcomes = new Map<string, number>()
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 1, max: 3 }), async (s, targets) => {
        const hub = new Hub(opts, silent, memoryAdapter())
        plugAgentFeatures(hub)
        let settles = 0
        const requests = hub.requests as unknown as { settle: (...args: unknown[]) => void }
        const settle = requests.settle.bind(requests)
        requests.settle = (...args) => {
          settles++
          settle(...args)
        }
        const conns = Array.from({ length: targets }, (_, i) => standIn(`c${i}`))
        for (const conn of conns) {
          hub.registry.add(conn)
          await hub.subscriptions.joinTarget(conn.id, 'room')
        }
        let outcome = 'unsettled'
        let calls = 0
        const request = hub.requests
          .request('room', { type: 'hitl_request', data: { requestId: 'q', question: '?' } }, { timeout: TIMEOUT })
          .then(
            () => {
              calls++
              outcome = 'reply'
            },
            (err: { code: string }) => {
              calls++
              outcome = err.code
            }
          )
        const id = [...(conns[0] as Connection).pending][0]?.id as string
        for (const conn of conns) {
          s.schedule(Promise.resolve(`reply ${conn.id}`)).then(() => hub.requests.reply(conn, id, conn.id, undefined))
          s.schedule(Promise.resolve(`decline ${conn.id}`)).then(() =>
            hub.requests.reply(conn, id, undefined, { code: 'no', message: 'declined' })
          )
          s.schedule(Promise.resolve(`drop ${conn.id}`)).then(() => {
            if (hub.connections.has(conn.id)) hub.remove(conn)
          })
        }
        s.schedule(delay(TIMEOUT + 1)).then(() => {})
        await s.waitAll()
        await delay(TIMEOUT + 1)
        await request
        const left = conns.reduce((n, c) => n + c.pending.size, 0)
        hub.close()
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
        return calls === 1 && settles === 1 && hub.stats().pendingRequests === 0 && left === 0
      }),
      { numRuns: RUNS, seed: 11 }
    )
    t.pass('every ordering held')
    t.comment(
      `reliability/requests: ${RUNS} orderings; outcomes ${JSON.stringify(Object.fromEntries(outcomes))}; each settled once, 0 pending after`
    )
  }
)
