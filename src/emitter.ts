import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { redisAdapter } from './adapters/redis.js'
import type { AgentEvents, EventRegistry } from './events.js'
import { type EmitterOptions, resolveEmitterOptions } from './options.js'
import { CONTROL_ROOM } from './server/control.js'
import { Hub } from './server/hub.js'
import { openStream } from './server/streams.js'
import type { RealtimeApi } from './types.js'

export type { EmitterOptions } from './options.js'

/**
 * What a worker process can do in the rooms of a fastify-realtime app without serving any connection: the same
 * methods as `app.realtime`, with the same types, validation and Redis contract.
 */
export interface Emitter<E extends EventRegistry = AgentEvents> extends Pick<RealtimeApi<E>, 'emit' | 'stream' | 'ask' | 'run' | 'cancel'> {
  /** Stops listening and closes the Redis connections the emitter opened (a client it was given stays open). */
  close(): Promise<void>
}

const noop = (): void => undefined
const silent: FastifyBaseLogger = {
  level: 'silent',
  fatal: noop,
  error: noop,
  warn: noop,
  info: noop,
  debug: noop,
  trace: noop,
  silent: noop,
  child: () => silent
}

/**
 * Connects a worker to the app's Redis: `emit`, `stream` and `ask` reach the clients of every instance, in seq order,
 * through the very adapter and code paths the plugin uses (an emitter is an instance that holds no connections).
 * Resolves once Redis is reached; rejects with the adapter's error otherwise.
 *
 * ```ts
 * const emitter = await createEmitter({ redis: process.env.REDIS_URL, events })
 * await emitter.emit('workflow:42', { type: 'agent:thought', data: { content: 'Working…' } })
 * ```
 */
export async function createEmitter<const E extends EventRegistry = AgentEvents>(options: EmitterOptions<E>): Promise<Emitter<E>> {
  const { resolved, keyPrefix } = resolveEmitterOptions(options)
  const log = options.logger ?? silent
  const redis = options.redis
  const adapter = redisAdapter(typeof redis === 'string' ? { url: redis, keyPrefix } : { client: redis as Redis, keyPrefix })
  const hub = new Hub(resolved, log, adapter)
  await adapter.init(
    {
      // It holds no rooms: only the signals between instances reach it (an answer to its question, a cancel).
      publication: (pub) => {
        if (pub.room === CONTROL_ROOM) hub.control.receive(pub.frame)
      },
      resync: noop
    },
    log
  )
  await hub.control.start()
  return {
    emit: (room, event, emitOptions) => hub.emit(room, event, emitOptions),
    stream: (room, event, streamOptions) => openStream(hub, room, event, streamOptions),
    ask: (target, event, askOptions) => hub.questions.ask(target, event, askOptions) as Promise<never>,
    run: (target, fn) => hub.runs.run(target, fn),
    cancel: (target) => hub.runs.cancel(target),
    async close() {
      hub.close()
      await adapter.close?.()
    }
  }
}
