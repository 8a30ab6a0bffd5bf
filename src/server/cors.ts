import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify'
import type { OriginPolicy } from '../origins.js'
import { originAllowed } from './identity.js'

/** What a preflight may ask for on our routes: the headers a token or a JSON body needs. */
const ALLOWED_HEADERS = 'authorization, content-type, last-event-id'

/**
 * CORS for one of the plugin's own HTTP routes, and for nothing else of the app: the plugin never registers a CORS
 * plugin, so the app's other routes keep whatever policy the app chose. An allowed `Origin` is echoed with
 * credentials (with `'*'`: any origin, without credentials); any other gets no CORS headers, so the browser keeps the
 * response from the page. Headers a CORS plugin of the app already set are left as they are.
 * Returns the `onRequest` hook to put on the route; the route's preflight (`OPTIONS`) is added here.
 */
export function routeCors(fastify: FastifyInstance, url: string, methods: readonly HTTPMethods[], policy: OriginPolicy | undefined) {
  const allowed = async (request: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
    const origin = request.headers.origin
    if (policy === undefined || origin === undefined || reply.hasHeader('access-control-allow-origin')) return false
    reply.header('vary', 'Origin')
    if (!(await originAllowed(policy, origin, request))) return false
    reply.header('access-control-allow-origin', policy.everyOrigin ? '*' : origin)
    if (!policy.everyOrigin) reply.header('access-control-allow-credentials', 'true')
    return true
  }
  if (policy !== undefined && !fastify.hasRoute({ method: 'OPTIONS', url })) {
    fastify.options(url, async (request, reply) => {
      if (await allowed(request, reply)) {
        reply.header('access-control-allow-methods', methods.join(', '))
        reply.header('access-control-allow-headers', ALLOWED_HEADERS)
        reply.header('access-control-max-age', '600')
      }
      return reply.code(204).send()
    })
  }
  return async function cors(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    await allowed(request, reply)
  }
}
