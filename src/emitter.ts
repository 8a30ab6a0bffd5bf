import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { redisAdapter } from './adapters/redis.js'
import { FST_REALTIME_INVALID_OPTION } from './errors.js'
import type { AgentEvents, EventRegistry } from './events.js'
import { fail, plainObject } from './option-checks.js'
import { type RealtimeOptions, type ResolvedOptions, resolveOptions } from './options.js'
import { plugAgentFeatures } from './server/agent.js'
import { CONTROL_ROOM } from './server/control.js'
import { Hub } from './server/hub.js'
import { emitTo } from './server/memberships.js'
import { openStream } from './server/streams.js'
import type { EmitOptions, EmitTarget, RealtimeApi } from './types.js'

/** `createEmitter()`'s options (`fastify-realtime/emitter`). */
export interface EmitterOptions<E extends EventRegistry = EventRegistry> {
  /** The Redis the plugin's Redis adapter uses: an ioredis client (left open by `close()`) or a URL. */
  redis: unknown
  /** The Redis adapter's `keyPrefix`. Default `realtime:`. */
  keyPrefix?: string
  /** The same registry as the plugin's. Default: `agentEvents`. */
  events?: E
  /** The same `history` as the plugin's, so the rooms' history is kept the same way whoever publishes. */
  history?: RealtimeOptions['history']
  /** Validate events against the registry. Default `true`. */
  validate?: boolean
  /** Default timeout of `ask()`, in ms. Default 30 000. */
  requestTimeout?: number
  /** A pino-like logger for what cannot be reported otherwise (a failed background write). Default: silent. */
  logger?: FastifyBaseLogger
}

const EMITTER_KEYS = ['redis', 'keyPrefix', 'events', 'history', 'validate', 'requestTimeout', 'logger']

/** Checks `createEmitter()`'s options; the shared ones resolve exactly as the plugin's do. */
export function resolveEmitterOptions(input: unknown): { resolved: ResolvedOptions; keyPrefix: string | undefined } {
  const given = plainObject('options', input)
  for (const key of Object.keys(given)) {
    if (!EMITTER_KEYS.includes(key)) throw new FST_REALTIME_INVALID_OPTION(`unknown option "${key}" (known: ${EMITTER_KEYS.join(', ')})`)
  }
  const redis = given.redis
  if (typeof redis !== 'string' && typeof (redis as { duplicate?: unknown } | null)?.duplicate !== 'function') {
    fail('redis', 'an ioredis client or a redis:// URL', redis)
  }
  if (given.keyPrefix !== undefined && typeof given.keyPrefix !== 'string') fail('keyPrefix', 'a string', given.keyPrefix)
  const { events, history, validate, requestTimeout } = given
  // No JWT: an emitter takes no connections. The rest is checked and defaulted as for the plugin.
  const resolved = resolveOptions({ events, history, validate, requestTimeout }, {}, true)
  return { resolved, keyPrefix: given.keyPrefix as string | undefined }
}

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
  const agent = plugAgentFeatures(hub)
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
    emit: ((target: EmitTarget, event: unknown, emitOptions?: EmitOptions) =>
      emitTo(hub, target, event, emitOptions)) as RealtimeApi['emit'],
    stream: (room, event, streamOptions) => openStream(hub, room, event, streamOptions),
    ask: (target, event, askOptions) => agent.questions.ask(target, event, askOptions) as Promise<never>,
    run: (target, fn) => agent.runs.run(target, fn),
    cancel: (target) => agent.runs.cancel(target),
    async close() {
      hub.close()
      await adapter.close?.()
    }
  }
}
