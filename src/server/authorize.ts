import type { AuthorizeContext, ResolvedOptions } from '../options.js'
import type { Connection } from './connection.js'
import { settleHook } from './hooks.js'

/**
 * Asks the application's `authorize` whether `conn` may do `action` in `room`. Only `true` allows; a throw or a
 * rejection is logged and denies; a denial is logged at info level. `extra` goes to the hook and the log (`runId`).
 */
export function authorize(
  opts: ResolvedOptions,
  conn: Connection,
  room: string,
  action: AuthorizeContext['action'],
  extra: { runId?: string } = {}
): Promise<boolean> {
  const verb = action === 'subscribe' ? 'subscription' : action
  return settleHook(
    conn.log,
    `realtime authorize failed; ${verb} denied`,
    { room, ...extra },
    () => opts.authorize({ user: conn.user, room, connection: conn, action, ...extra } as AuthorizeContext),
    (answer) => {
      if (answer === true) return true
      conn.log.info({ room, ...extra }, `realtime ${verb} denied`)
      return false
    },
    () => false
  )
}
