import type { FastifyInstance } from 'fastify'
import type { ServerApiSettings } from '../options.js'
import type { StateChange } from '../types.js'
import * as S from './schemas.js'
import { type OnceByKey, roomQuery, type ServerApiContext } from './server-api.js'
import { checkRoom, viaAdapter } from './shared.js'

// State rooms over HTTP: what `app.realtime.state(room)` does, for a process that is not the server. A change is
// computed against the value as it stands in the adapter, so a worker and the server changing one room lose nothing.

export function stateRoutes(app: FastifyInstance, { hub, api, opts }: ServerApiContext, base: string, onceByKey: OnceByKey): void {
  const { bodyLimit } = opts.serverApi as ServerApiSettings
  const changed = (room: string, change: StateChange) => ({ room, version: change.version, ops: change.ops })

  app.get(`${base}/state`, async (request) => {
    const room = roomQuery(hub, request.query)
    const handle = api.state(room)
    const value = await viaAdapter(handle.get())
    return { room, version: handle.version, value: value ?? null }
  })

  const stateBody = S.validator(S.StateBody)
  app.post(`${base}/state`, { bodyLimit }, async (request, reply) => {
    const { room, value } = stateBody(request.body)
    checkRoom(hub, room, '/room')
    return onceByKey(request, reply, async () => changed(room, await viaAdapter(api.state(room).set(value))))
  })

  const patchBody = S.validator(S.StatePatchBody)
  app.post(`${base}/state/patch`, { bodyLimit }, async (request, reply) => {
    const { room, ops } = patchBody(request.body)
    checkRoom(hub, room, '/room')
    return onceByKey(request, reply, async () => changed(room, await viaAdapter(api.state(room).patch(ops))))
  })
}
