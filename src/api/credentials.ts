import { createHash, timingSafeEqual } from 'node:crypto'
import type { ServerApiSettings } from '../options.js'
import { Refusal } from '../server/auth.js'
import type { RealtimeUser } from '../types.js'

/** Server API credentials: static keys and the application's `verify`. */
export interface ServerCredentials {
  /** Resolves with a name for the credential (for rate limits and logs, never the credential), or undefined. */
  identify(token: string): Promise<string | undefined>
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

export function serverCredentials(settings: ServerApiSettings): ServerCredentials {
  // Compared as digests, which all have one length, so neither a key's length nor its content shows in the timing.
  const keys = settings.keys.map(digest)
  const { verify } = settings
  return {
    async identify(token) {
      const given = digest(token)
      let match = -1
      // Every key is compared, whichever matches, so the timing does not tell which one did.
      for (let i = 0; i < keys.length; i++) if (timingSafeEqual(given, keys[i] as Buffer)) match = i
      if (match !== -1) return `key:${match}`
      if (verify === undefined) return undefined
      let accepted = false
      try {
        accepted = (await verify(token)) === true
      } catch {
        accepted = false
      }
      return accepted ? `token:${given.toString('hex', 0, 8)}` : undefined
    }
  }
}

/**
 * Wraps a user-token verifier so that it refuses server credentials (401 on an upgrade, `unauthorized` on `auth`): a
 * leaked or misrouted server key must never become a user's connection. Every endpoint that takes user tokens uses it.
 */
export function refuseServerCredentials(
  verify: (token: string) => Promise<RealtimeUser>,
  credentials: ServerCredentials | undefined
): (token: string) => Promise<RealtimeUser> {
  if (credentials === undefined) return verify
  return async (token) => {
    if ((await credentials.identify(token)) !== undefined) {
      throw new Refusal('Server API credentials are not accepted on this endpoint', 'server_credential')
    }
    return verify(token)
  }
}
