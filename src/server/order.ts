import type { FastifyInstance } from 'fastify'
import { FST_REALTIME_REGISTRATION_ORDER } from '../errors.js'

type Decorate = (this: FastifyInstance, name: string | symbol, ...rest: unknown[]) => FastifyInstance

/**
 * Turns the crash of a plugin registered after us, that we registered already, into an error that says so.
 * Registering @fastify/jwt a second time fails on its first decorator (`The decorator 'user' has already been added!`)
 * and, @fastify/websocket, on `websocketServer`; neither names fastify-realtime, and @fastify/jwt's is followed by a
 * plugin timeout. So `decorate` and `decorateRequest` of the app are wrapped: a second decorator of that name, while
 * the first is ours, throws FST_REALTIME_REGISTRATION_ORDER instead. Everything else passes through unchanged.
 */
export function guardRegistrationOrder(fastify: FastifyInstance, ours: { jwt: boolean; websocket: boolean }): void {
  if (ours.jwt) {
    wrap(fastify, 'decorateRequest', (app, name) =>
      name === 'user' && app.hasRequestDecorator('user') ? message('@fastify/jwt', 'jwt: { secret }') : undefined
    )
  }
  if (ours.websocket) {
    wrap(fastify, 'decorate', (app, name) =>
      name === 'websocketServer' && app.hasDecorator('websocketServer') ? message('@fastify/websocket', 'its options') : undefined
    )
  }
}

function message(plugin: string, given: string): string {
  return (
    `${plugin} was registered after fastify-realtime, which had registered it already. ` +
    `Register ${plugin} before fastify-realtime (fastify-realtime then uses it), or do not register it and let ` +
    `fastify-realtime do it with ${given}`
  )
}

function wrap(
  fastify: FastifyInstance,
  method: 'decorate' | 'decorateRequest',
  clash: (app: FastifyInstance, name: string | symbol) => string | undefined
): void {
  const original = fastify[method] as unknown as Decorate
  const guarded: Decorate = function (name, ...rest) {
    const problem = clash(this, name)
    if (problem !== undefined) throw new FST_REALTIME_REGISTRATION_ORDER(problem)
    return original.call(this, name, ...rest)
  }
  ;(fastify as unknown as Record<string, Decorate>)[method] = guarded
}
