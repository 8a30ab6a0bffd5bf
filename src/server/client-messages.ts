import { clientChecks, ROOM_TYPES } from '../protocol/catalog.js'
import { ClientType, ErrorCode } from '../protocol/constants.js'
import { ApplicationMessage, compile } from '../protocol/schemas.js'
import type { Connection, Envelope } from './connection.js'
import * as frames from './frames.js'
import { callHook, callHookSync, detach, logFailure } from './hooks.js'
import type { Hub } from './hub.js'

// What each client message does, once the connection has parsed it, checked its envelope and counted it against the
// rate limit (connection.ts). Each handler answers on the connection; none throws.

const checkApplication = compile(ApplicationMessage)

/** An error a `handle()` handler threw on purpose: its code and message go to the client. */
function isRealtimeError(err: unknown): err is { code: string; message: unknown } {
  const e = err as { name?: unknown; code?: unknown } | null
  return e?.name === 'RealtimeError' && typeof e.code === 'string' && e.code !== ''
}

/** Sends a checked client message to what handles its type. */
export function route(conn: Connection, hub: Hub, msg: Envelope): void {
  // The envelope check has made `room` a string or undefined.
  const { type, id, room } = msg
  if (ROOM_TYPES.has(type) && !hub.registry.validRoom(room)) {
    const max = hub.opts.limits.roomNameMaxLength
    conn.invalid(ErrorCode.InvalidRoom, `"${type}" needs a room: 1 to ${max} characters matching ${hub.opts.limits.roomPattern}`, id, room)
    return
  }
  const control = clientChecks.get(type) ?? checkApplication
  if (!control.check(msg)) {
    conn.invalid(ErrorCode.InvalidMessage, `invalid "${type}" message at ${control.explain(msg)}`, id, room)
    return
  }
  switch (type) {
    case ClientType.Subscribe: {
      conn.valid()
      const room = msg.room as string
      hub.subscriptions.subscribe(conn, room, (msg.data ?? {}) as { since?: number; epoch?: string }, id).catch((err: unknown) => {
        conn.log.error({ err, room }, 'realtime subscribe failed')
        conn.sendError(ErrorCode.Internal, 'internal error', id, room)
      })
      return
    }
    case ClientType.Unsubscribe:
      conn.valid()
      for (const ticket of conn.joining) if (ticket.room === room) ticket.cancelled = true
      hub.subscriptions.detach(conn, room as string)
      conn.sendFrame(frames.unsubscribed(id, room as string))
      return
    case ClientType.Ping:
      conn.valid()
      conn.sendFrame(frames.pong(id))
      return
    case ClientType.Auth:
      conn.valid()
      detach(conn.log, 'realtime token refresh failed', {}, conn.refresh((msg.data as { token: string }).token, id))
      return
    case ClientType.Reply:
      reply(conn, hub, msg)
      return
    case ClientType.Presence:
      conn.valid()
      presence(conn, hub, msg.room as string, id)
      return
    case ClientType.Publish:
      publish(conn, hub, msg.room as string, msg.data as { type: string; data?: unknown }, id)
      return
    case ClientType.Cancel:
      conn.valid()
      answerFailure(
        conn,
        'realtime cancel failed',
        msg,
        hub.features.cancel(conn, msg.room as string, (msg.data as { runId: string }).runId, id)
      )
      return
  }
  const registered = hub.handlers.get(type)
  if (registered === undefined) {
    conn.invalid(ErrorCode.UnknownType, `unknown message type "${type}"`, id)
    return
  }
  if (!registered.check.check(msg.data)) {
    conn.invalid(ErrorCode.InvalidMessage, `invalid data for "${type}" at ${registered.check.explain(msg.data)}`, id)
    return
  }
  conn.valid()
  answerFailure(conn, 'realtime handler failed', msg, run(conn, hub, registered.handler, msg))
}

/** Work for a client message that nobody awaits: should it fail past its own handling, the client still gets one answer. */
function answerFailure(conn: Connection, message: string, msg: Envelope, work: Promise<void>): void {
  work.catch((err: unknown) => {
    logFailure(conn.log, err, { type: msg.type, room: msg.room }, message)
    conn.sendError(ErrorCode.Internal, 'internal error', msg.id, msg.room)
  })
}

/** A client's `publish`: a registry event, checked against its schema, sent volatile to the room once `authorize` allows. */
function publish(conn: Connection, hub: Hub, room: string, event: { type: string; data?: unknown }, id: string | undefined): void {
  const check = hub.eventChecker(event.type)
  if (check === undefined) {
    conn.invalid(ErrorCode.UnknownType, `unknown event type "${event.type}"`, id)
    return
  }
  if (!check.check(event.data)) {
    conn.invalid(ErrorCode.InvalidMessage, `invalid data for "${event.type}" at ${check.explain(event.data)}`, id, room)
    return
  }
  conn.valid()
  hub.publishFrom(conn, room, event.type, event.data).then(
    (allowed) => {
      if (!allowed) conn.sendError(ErrorCode.Forbidden, `not allowed to publish to "${room}"`, id, room)
      else if (id !== undefined) conn.sendFrame(frames.ack(id, null))
    },
    (err: unknown) => {
      conn.log.error({ err, room }, 'realtime publish failed')
      conn.sendError(ErrorCode.Internal, 'internal error', id, room)
    }
  )
}

/** Answers `presence {room}` with the room's members, to a connection that holds the room. */
function presence(conn: Connection, hub: Hub, room: string, id: string | undefined): void {
  const enabled = callHookSync({ log: conn.log, message: 'realtime presence predicate failed', fields: { room } }, () =>
    hub.opts.presence(room)
  )
  if (!enabled.ok) {
    conn.sendError(ErrorCode.Internal, 'internal error', id, room)
    return
  }
  if (enabled.value !== true) {
    conn.sendError(ErrorCode.Forbidden, `presence is not enabled for "${room}"`, id, room)
    return
  }
  if (!conn.rooms.has(room)) {
    conn.sendError(ErrorCode.Forbidden, `subscribe to "${room}" before asking its presence`, id, room)
    return
  }
  hub.presence.list(room).then(
    (members) => conn.sendFrame(frames.presenceList(id, room, members)),
    (err: unknown) => {
      conn.log.error({ err, room }, 'realtime presence list failed')
      conn.sendError(ErrorCode.Internal, 'internal error', id, room)
    }
  )
}

function reply(conn: Connection, hub: Hub, msg: Envelope): void {
  conn.valid()
  const error = msg.error as { code: string; message: string } | undefined
  // With a room, it answers a question of that room (`ask()`).
  if (msg.room !== undefined) {
    answerFailure(conn, 'realtime answer failed', msg, hub.features.answer(conn, msg.room, msg.id as string, msg.data, error))
    return
  }
  if (!hub.requests.reply(conn, msg.id as string, msg.data, error)) {
    conn.sendError(ErrorCode.UnknownRequest, `no pending request "${msg.id}" for this connection`, msg.id)
  }
}

/** Runs a `handle()` handler: its value is the ack, a `RealtimeError` its own error, anything else `internal`. */
async function run(conn: Connection, hub: Hub, handler: (ctx: never) => unknown, msg: Envelope): Promise<void> {
  const ctx = { data: msg.data, id: msg.id, connection: conn, user: conn.user, log: conn.log }
  const { id } = msg
  // The ack is serialized within the call, so that a value JSON cannot hold (a cycle, a BigInt) fails like a throw.
  const call = { log: conn.log, message: 'realtime handler failed', fields: { type: msg.type }, timeout: hub.opts.hookTimeout }
  const result = await callHook({ ...call, expected: isRealtimeError }, async () => {
    const value = await (handler as (c: typeof ctx) => unknown)(ctx)
    return id === undefined ? undefined : frames.ack(id, value)
  })
  if (result.ok) {
    if (result.value !== undefined) conn.sendFrame(result.value)
    return
  }
  const text = isRealtimeError(result.error) ? messageOf(result.error) : undefined
  if (text === undefined) {
    if (isRealtimeError(result.error))
      conn.log.error({ type: msg.type }, 'realtime handler failed: its RealtimeError has no readable message')
    conn.sendError(ErrorCode.Internal, 'internal error', msg.id)
  } else conn.sendError((result.error as { code: string }).code, text, msg.id)
}

/** The message of a `RealtimeError` the app threw, as a string; undefined when it cannot become one. */
function messageOf(err: { message: unknown }): string | undefined {
  try {
    const { message } = err
    return typeof message === 'string' ? message : String(message)
  } catch {
    return undefined
  }
}
