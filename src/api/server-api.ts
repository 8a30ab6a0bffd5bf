import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ResolvedOptions, ServerApiSettings } from '../options.js'
import { CloseCode } from '../protocol/constants.js'
import type { AgentFeatures } from '../server/agent.js'
import type { Signal } from '../server/control.js'
import type { Hub } from '../server/hub.js'
import type { RealtimeApi } from '../types.js'
import { agentRoutes } from './agent-routes.js'
import type { ServerCredentials } from './credentials.js'
import { ApiError, ApiErrorCode, replyError } from './errors.js'
import { fingerprintOf, idempotency } from './idempotency.js'
import { openapiDocument } from './openapi.js'
import { rateLimiter } from './rate-limit.js'
import * as S from './schemas.js'
import { checkEvent, checkRoom, viaAdapter } from './shared.js'
import { stateRoutes } from './state-routes.js'

/** The credential a request was authenticated with (its name, never the credential). */
export const kCredential = Symbol('fastify-realtime.credential')
type ApiRequest = FastifyRequest & { [kCredential]?: string }

export interface ServerApiContext {
  readonly opts: ResolvedOptions
  readonly credentials: ServerCredentials
  readonly hub: Hub
  readonly agent: AgentFeatures
  readonly api: RealtimeApi
}

/** Runs `work` once per `Idempotency-Key` of the request's credential (every time without one); a replay says so. */
export type OnceByKey = <T>(request: FastifyRequest, reply: { header(k: string, v: string): unknown }, work: () => Promise<T>) => Promise<T>

/** Where the routes live: `<path>/api`, relative to the plugin's prefix. */
export const apiBase = (path: string): string => `${path.replace(/\/$/, '')}/api`

/**
 * The HTTP server API, registered in a context of its own so that its hooks, body limit and error format touch no
 * other route of the application.
 */
export async function registerServerApi(fastify: FastifyInstance, ctx: ServerApiContext): Promise<void> {
  const { opts, hub, api } = ctx
  // Only called when the option is on.
  const settings = opts.serverApi as ServerApiSettings
  const base = apiBase(opts.path)
  await fastify.register(async (app) => {
    app.setErrorHandler(replyError)
    app.addHook('onRequest', authenticate(ctx))
    const idem = idempotency(hub.adapter, settings.idempotencyTtl)
    const onceByKey: OnceByKey = async (request, reply, work) => {
      const key = request.headers['idempotency-key']
      if (typeof key !== 'string') return work()
      const credential = (request as ApiRequest)[kCredential] as string
      const fingerprint = fingerprintOf(request.method, request.url, request.body)
      const { replayed, answer } = await viaAdapter(idem.once(credential, key, fingerprint, work))
      if (replayed) reply.header('idempotent-replayed', 'true')
      return answer
    }

    const publishBody = S.validator(S.PublishBody)
    app.post(`${base}/publish`, { bodyLimit: settings.bodyLimit }, async (request, reply) => {
      const body = publishBody(request.body)
      checkEvent(hub, body, '')
      return onceByKey(request, reply, () => publishOne(api, body))
    })

    const batchBody = S.validator(S.BatchBody)
    app.post(`${base}/batch`, { bodyLimit: settings.bodyLimit }, async (request, reply) => {
      const { events } = batchBody(request.body)
      // Every event is checked before the first is published: a bad one publishes none.
      for (const [i, event] of events.entries()) checkEvent(hub, event, `/events/${i}`)
      return onceByKey(request, reply, async () => {
        const results: unknown[] = []
        for (const event of events) results.push(await publishOne(api, event))
        return { results }
      })
    })

    app.get(`${base}/presence`, async (request) => {
      const room = roomQuery(hub, request.query)
      return { room, members: await viaAdapter(api.presence(room)) }
    })

    const disconnectBody = S.validator(S.DisconnectBody)
    app.post(`${base}/disconnect`, async (request) => {
      const { user, code = CloseCode.Revoked, reason = 'disconnected by the server' } = disconnectBody(request.body)
      await viaAdapter(hub.control.send({ kind: 'disconnect', user, code, reason }))
      return { user }
    })

    app.get(`${base}/stats`, async () => api.stats())

    agentRoutes(app, ctx, base)
    stateRoutes(app, ctx, base, onceByKey)
  })
  if (settings.openapi) {
    const document = openapiDocument({ base: `${fastify.prefix}${base}`, events: opts.events })
    fastify.get(`${opts.path.replace(/\/$/, '')}/openapi.json`, async () => document)
  }
}

function publishOne(api: RealtimeApi, body: S.PublishBody): Promise<unknown> {
  const { room, type, data, volatile, immediate } = body
  return viaAdapter(api.emit(room, { type, data } as never, { volatile, immediate }))
}

/** `?room=` of a GET, checked like a room of a body. */
export function roomQuery(hub: Hub, query: unknown): string {
  const room = (query as { room?: unknown }).room
  if (typeof room !== 'string') throw new ApiError(400, ApiErrorCode.InvalidMessage, 'the query needs ?room=<room>')
  checkRoom(hub, room, '')
  return room
}

/**
 * Closes the connections of a user when any instance asks (`POST /disconnect`). Every instance listens, with the API on
 * or not, so that one instance's API reaches the users of all.
 */
export function listenForDisconnects(hub: Hub): void {
  hub.control.on('disconnect', (signal) => {
    const { user, code, reason } = signal as Extract<Signal, { kind: 'disconnect' }>
    for (const conn of hub.registry.targets({ user })) conn.close(code, reason)
  })
}

/** Bearer server credential, then the rate limit of that credential: 401 or 429 before the body is read. */
function authenticate({ credentials, opts }: ServerApiContext) {
  const limit = (opts.serverApi as ServerApiSettings).rateLimit
  const limiter = limit === undefined ? undefined : rateLimiter(limit)
  return async (request: FastifyRequest): Promise<void> => {
    const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(request.headers.authorization ?? '')
    const credential = match === null ? undefined : await credentials.identify(match[1] as string)
    if (credential === undefined) {
      request.log.info({ reason: match === null ? 'missing' : 'not a server credential' }, 'realtime server API refused')
      throw new ApiError(401, ApiErrorCode.Unauthorized, 'send a server API key as "Authorization: Bearer <key>"')
    }
    ;(request as ApiRequest)[kCredential] = credential
    if (limiter === undefined) return
    const retryAfter = limiter.take(credential)
    if (retryAfter > 0) {
      throw Object.assign(new ApiError(429, ApiErrorCode.RateLimited, `too many requests: retry in ${retryAfter} s`), {
        headers: { 'retry-after': String(retryAfter) }
      })
    }
  }
}
