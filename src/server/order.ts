import type { FastifyInstance } from 'fastify'
import { FST_REALTIME_REGISTRATION_ORDER } from '../errors.js'

type Decorate = (this: FastifyInstance, name: string | symbol, ...rest: unknown[]) => FastifyInstance
type Method = 'decorate' | 'decorateRequest' | 'decorateReply'

/** The decorators each plugin adds, by the method that adds them. */
const DECORATORS: Readonly<Record<string, Readonly<Partial<Record<Method, readonly string[]>>>>> = {
  '@fastify/jwt': { decorate: ['jwt'], decorateRequest: ['user', 'jwtDecode', 'jwtVerify'], decorateReply: ['jwtSign'] },
  '@fastify/websocket': { decorate: ['websocketServer', 'injectWS'], decorateRequest: ['ws'] }
}

/**
 * Turns the crash of a plugin registered after us, that we registered already, into an error that says so.
 * Registering @fastify/jwt or @fastify/websocket a second time throws `The decorator 'user' (or 'ws') has already
 * been added!` from inside the plugin, where avvio does not catch it: the process gets an uncaught exception and the
 * app a plugin timeout, neither naming fastify-realtime. So the app's decorate methods are wrapped: a second
 * decorator of one of those names is skipped and remembered, and `ready()` rejects with FST_REALTIME_REGISTRATION_ORDER.
 * Every other decorator passes through unchanged.
 */
export function guardRegistrationOrder(fastify: FastifyInstance, ours: { jwt: boolean; websocket: boolean }): void {
  const plugins = [...(ours.jwt ? ['@fastify/jwt'] : []), ...(ours.websocket ? ['@fastify/websocket'] : [])]
  if (plugins.length === 0) return
  let late: { plugin: string; name: string } | undefined
  const has: Record<Method, (app: FastifyInstance, name: string) => boolean> = {
    decorate: (app, name) => app.hasDecorator(name),
    decorateRequest: (app, name) => app.hasRequestDecorator(name),
    decorateReply: (app, name) => app.hasReplyDecorator(name)
  }
  for (const method of Object.keys(has) as Method[]) {
    const original = fastify[method] as unknown as Decorate
    const guarded: Decorate = function (name, ...rest) {
      const plugin = plugins.find((p) => DECORATORS[p]?.[method]?.includes(name as string))
      if (plugin === undefined || !has[method](this, name as string)) return original.call(this, name, ...rest)
      late ??= { plugin, name: name as string }
      return this
    }
    ;(fastify as unknown as Record<Method, Decorate>)[method] = guarded
  }
  fastify.addHook('onReady', async () => {
    if (late === undefined) return
    const { plugin, name } = late
    throw new FST_REALTIME_REGISTRATION_ORDER(
      `the decorator "${name}" was added again after fastify-realtime registered ${plugin}, which adds it ` +
        `(${plugin} registered after fastify-realtime?). Register ${plugin} before fastify-realtime, which then uses ` +
        `it, or leave it to fastify-realtime`
    )
  })
}
