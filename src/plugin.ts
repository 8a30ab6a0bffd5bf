import { randomUUID } from 'node:crypto'
import fastifyCookie from '@fastify/cookie'
import fastifyJwt from '@fastify/jwt'
import fastifyWebsocket from '@fastify/websocket'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { WebSocket } from 'ws'
import { memoryAdapter } from './adapters/memory.js'
import { aguiCore } from './ag-ui/core.js'
import { createAgui } from './ag-ui/route.js'
import { refuseServerCredentials, serverCredentials } from './api/credentials.js'
import { listenForDisconnects, registerServerApi } from './api/server-api.js'
import { asyncapiDocument } from './asyncapi.js'
import { dataSchemaOf, type EventRegistry } from './events.js'
import { type RealtimeOptions, resolveOptions } from './options.js'
import { CloseCode } from './protocol/constants.js'
import { SSE_SUFFIX } from './protocol/sse.js'
import { plugAgentFeatures } from './server/agent.js'
import { createAuthenticate, createVerifier, kUser, type RequestWithUser, redactQueryToken, selectProtocol } from './server/auth.js'
import { releaseSlot } from './server/caps.js'
import { Connection } from './server/connection.js'
import { CONTROL_ROOM } from './server/control.js'
import { routeCors } from './server/cors.js'
import { Hub } from './server/hub.js'
import { emitTo } from './server/memberships.js'
import { createMetrics, type Metrics, type MetricsSettings } from './server/metrics.js'
import { guardRegistrationOrder } from './server/order.js'
import { redactTicket as redactSseTicket, registerSse, type SseRoutes } from './server/sse-routes.js'
import { openState } from './server/state-rooms.js'
import { openStream } from './server/streams.js'
import { wsTransport } from './server/ws-transport.js'
import { type EmitOptions, type EmitTarget, kPath, type RealtimeApi, type RealtimeUser, type StateOptions } from './types.js'

type WsServer = FastifyInstance['websocketServer']

async function realtime(fastify: FastifyInstance, input: RealtimeOptions<EventRegistry>): Promise<void> {
  const opts = resolveOptions(input, process.env, fastify.hasDecorator('jwt'), fastify.log)
  const path = `${fastify.prefix}${opts.path}`
  const adapter = opts.adapter ?? memoryAdapter()
  const hub = new Hub(opts, fastify.log, adapter)
  const agent = plugAgentFeatures(hub)
  let sse: SseRoutes | undefined
  // Every open connection is a WebSocket but the streams the SSE routes hold.
  const stats = () => {
    const core = hub.stats()
    const streams = sse?.count() ?? 0
    return { ...core, transports: { websocket: core.connections - streams, sse: streams } }
  }
  if (opts.metrics !== undefined) hub.metrics = await metricsOf(fastify, opts.metrics, stats)
  // Publications of the control room are signals between instances; every other one is the hub's.
  await adapter.init(
    {
      publication: (pub) => (pub.room === CONTROL_ROOM ? hub.control.receive(pub.frame) : hub.delivery.publication(pub)),
      resync: () => hub.delivery.resync()
    },
    fastify.log
  )
  // Closed last: connections are closed (preClose) before the adapter goes.
  fastify.addHook('onClose', async () => {
    await adapter.close?.()
  })
  await hub.control.start()
  listenForDisconnects(hub)

  // Registering a plugin twice fails with FST_ERR_PLUGIN_ALREADY_PRESENT-like decorator clashes
  // ("The decorator 'websocketServer' has already been added"), so each is registered only if absent.
  const ownWebsocket = !fastify.hasDecorator('websocketServer')
  if (!ownWebsocket) {
    const wss = fastify.websocketServer as WsServer & { options: { handleProtocols?: Parameters<typeof selectProtocol>[1] } }
    wss.options.handleProtocols = selectProtocol(path, wss.options.handleProtocols)
    // The app's @fastify/websocket keeps its own preClose; ours closes the realtime connections.
    fastify.addHook('preClose', async () => hub.close())
  } else {
    await fastify.register(fastifyWebsocket, {
      options: {
        maxPayload: opts.limits.maxPayload,
        maxFragments: opts.limits.maxFragments,
        handleProtocols: selectProtocol(path),
        // Our messages are compressed once per emit (src/server/ws-transport.ts), each on its own, so no context is
        // kept either way; ws only inflates what clients send, within maxPayload.
        perMessageDeflate: opts.deflate === undefined ? false : { serverNoContextTakeover: true, clientNoContextTakeover: true }
      },
      preClose(done) {
        hub.close()
        const wss = this.websocketServer as WsServer
        for (const client of wss.clients) client.close(CloseCode.GoingAway, 'server shutting down')
        // A client that never answers the close frame must not hold up the shutdown.
        setTimeout(() => {
          for (const client of wss.clients) client.terminate()
        }, 1000).unref()
        wss.close()
        done()
      }
      // Socket errors: see wsTransport().
    })
  }
  if (opts.jwt !== undefined) await fastify.register(fastifyJwt, opts.jwt as Parameters<typeof fastifyJwt>[1])
  if (opts.jwtCookie !== undefined && !fastify.hasRequestDecorator('cookies')) await fastify.register(fastifyCookie)
  guardRegistrationOrder(fastify, { jwt: opts.jwt !== undefined, websocket: ownWebsocket })

  const redact = redactQueryToken(path)
  fastify.server.prependListener('upgrade', redact)
  fastify.server.prependListener('request', redact)
  const credentials = opts.serverApi === undefined ? undefined : serverCredentials(opts.serverApi)
  // Server API credentials are refused wherever user tokens are taken.
  const verify = refuseServerCredentials(createVerifier(fastify, opts.jwt?.secret), credentials)
  if (opts.sse !== undefined) {
    const ssePath = `${path.replace(/\/$/, '')}${SSE_SUFFIX}`
    const redactStream = redactQueryToken(ssePath)
    const redactTicket = redactSseTicket(ssePath)
    fastify.server.prependListener('request', redactStream)
    fastify.server.prependListener('request', redactTicket)
    fastify.addHook('onClose', async () => {
      fastify.server.removeListener('request', redactStream)
      fastify.server.removeListener('request', redactTicket)
    })
    sse = await registerSse(fastify, { opts, hub, verify })
  }

  const api: RealtimeApi = {
    emit: ((target: EmitTarget, event: unknown, options?: EmitOptions) => emitTo(hub, target, event, options)) as RealtimeApi['emit'],
    stream: (room, event, options) => openStream(hub, room, event, options),
    state: ((room: string, options?: StateOptions) => openState(hub, room, options)) as RealtimeApi['state'],
    handle: (type: string, schema: unknown, handler: unknown) => hub.handle(type, dataSchemaOf(schema), handler),
    request: (target, event, options) => hub.requests.request(target, event, options) as Promise<never>,
    ask: (target, event, options) => agent.questions.ask(target, event, options) as Promise<never>,
    join: (target, room, options) => hub.memberships.join(target, room, options),
    leave: (target, room) => hub.memberships.leave(target, room),
    presence: (room) => hub.presence.list(room),
    run: (target, fn) => agent.runs.run(target, fn),
    cancel: (target) => agent.runs.cancel(target),
    connection: (id) => hub.connections.get(id),
    stats,
    asyncapi: () =>
      asyncapiDocument({
        path,
        events: opts.events,
        messages: new Map([...hub.handlers].map(([type, registered]) => [type, registered.schema])),
        info: opts.asyncapi.info
      }),
    close: async () => hub.close(),
    agui: createAgui(fastify, aguiCore(hub, agent))
  }
  Object.defineProperty(api, kPath, { value: path })
  fastify.decorate('realtime', api)

  fastify.route({
    method: 'GET',
    url: opts.path,
    websocket: true,
    preValidation: [createAuthenticate(opts, verify, hub, hub.slots), hub.memberships.atConnect],
    // A browser's WebSocket cannot see why an upgrade failed; the client asks with a plain GET, which gets the same
    // refusal. Any page may read its own refusal (it names only its origin or token problem; no credentials).
    onSend: async (request, reply, payload) => {
      const origin = request.headers.origin
      if (origin !== undefined && reply.statusCode >= 400 && !reply.hasHeader('access-control-allow-origin')) {
        reply.header('access-control-allow-origin', origin).header('vary', 'Origin')
      }
      return payload
    },
    // A later step refused the upgrade: its place under the caps is free again.
    onError: async (request) => releaseSlot(request),
    handler: (socket: WebSocket, request) => {
      // An upgrade that passed its hook just before close() began.
      if (hub.closing) {
        releaseSlot(request)
        socket.close(CloseCode.GoingAway, 'server shutting down')
        return
      }
      const user = (request as RequestWithUser)[kUser] as RealtimeUser
      const id = randomUUID()
      const log = request.log.child({ connectionId: id, userId: user.sub })
      const conn = new Connection(id, wsTransport(socket, log, opts), user, log, hub, verify)
      hub.admit(conn, request)
    }
  })

  if (opts.asyncapi.route) {
    const url = `${opts.path.replace(/\/$/, '')}/asyncapi.json`
    const cors = routeCors(fastify, url, ['GET'], opts.cors ? opts.origins : undefined)
    fastify.get(url, { onRequest: cors }, async () => api.asyncapi())
  }

  if (credentials !== undefined) await registerServerApi(fastify, { opts, credentials, hub, agent, api })

  fastify.addHook('onClose', async () => {
    fastify.server.removeListener('upgrade', redact)
    fastify.server.removeListener('request', redact)
  })
}

/** Registers the metrics, and the route that serves them unless the app has one there already (or `route: false`). */
async function metricsOf(fastify: FastifyInstance, settings: MetricsSettings, stats: RealtimeApi['stats']): Promise<Metrics> {
  const metrics = await createMetrics(settings, stats)
  const { route } = settings
  if (route !== false && !fastify.hasRoute({ method: 'GET', url: route })) {
    const { registry } = metrics
    fastify.get(route, async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()))
  }
  return metrics
}

/**
 * The fastify-realtime plugin: `app.register(realtime, options)`.
 * Registers @fastify/websocket and @fastify/jwt (and, for a JWT cookie, @fastify/cookie) unless the app already did.
 * It registers no CORS plugin: its own HTTP routes answer CORS themselves.
 */
export const fastifyRealtime = fp(realtime, { fastify: '5.x', name: 'fastify-realtime' }) as FastifyPluginAsync<
  RealtimeOptions<EventRegistry>
>
export default fastifyRealtime
