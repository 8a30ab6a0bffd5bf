import type { FastifyRequest } from 'fastify'

/** What the caps count besides reservations: the connections the instance holds, in all and per user. */
export interface HeldConnections {
  connectionCount(): number
  connectionsOf(userId: string): number
}

/** A place under `limits.connections` (and, once the user is known, `limits.connectionsPerUser`) held for one upgrade. */
export interface Slot {
  /** Takes a place under the user's cap too; false (nothing taken) when the user is at it. */
  forUser(userId: string): boolean
  /** Gives the places back. Idempotent: called when the connection is held, and when the upgrade fails or its socket closes. */
  release(): void
}

export const kSlot = Symbol('realtime.slot')
export type RequestWithSlot = FastifyRequest & { [kSlot]?: Slot }

/**
 * Gives back the place a request that opens a connection holds, if it holds one: once the registry counts its
 * connection (`Hub.admit`), or when a step after the checks refused it (the route's `onError`: a bad
 * `Last-Event-ID`, a close that began meanwhile), so the place is free at once rather than when its kept-alive socket
 * closes.
 */
export function releaseSlot(request: FastifyRequest): void {
  ;(request as RequestWithSlot)[kSlot]?.release()
}

/**
 * The connection caps, counted atomically around the asynchronous part of an upgrade (token verification, a JWKS
 * lookup, `authenticate`, `subscriptions`). An upgrade reserves its place before the first `await` and keeps it
 * until its connection is in the registry, or gives it back when it fails. Each check and its reservation run in one
 * synchronous step, so upgrades that wait together can never take more places than the cap leaves.
 */
export class ConnectionSlots {
  private reserved = 0
  private readonly reservedByUser = new Map<string, number>()

  constructor(
    private readonly held: HeldConnections,
    private readonly limits: { readonly connections: number; readonly connectionsPerUser: number }
  ) {}

  /** A place under the global cap, or undefined when the instance is full. */
  take(): Slot | undefined {
    if (this.held.connectionCount() + this.reserved >= this.limits.connections) return undefined
    this.reserved++
    let user: string | undefined
    let released = false
    return {
      forUser: (userId) => {
        const mine = this.reservedByUser.get(userId) ?? 0
        if (this.held.connectionsOf(userId) + mine >= this.limits.connectionsPerUser) return false
        this.reservedByUser.set(userId, mine + 1)
        user = userId
        return true
      },
      release: () => {
        if (released) return
        released = true
        this.reserved--
        if (user === undefined) return
        const left = (this.reservedByUser.get(user) as number) - 1
        if (left === 0) this.reservedByUser.delete(user)
        else this.reservedByUser.set(user, left)
      }
    }
  }
}
