import { type TSchema, Type } from '@sinclair/typebox'
import type { EventRegistry } from './events.js'
import type { AsyncApiInfo } from './options.js'
import { CATALOG } from './protocol/catalog.js'
import { SUBPROTOCOL } from './protocol/constants.js'
import * as S from './protocol/schemas.js'
import type { AsyncApiDocument } from './types.js'

export type { AsyncApiInfo } from './options.js'
export type { AsyncApiDocument } from './types.js'

export interface AsyncApiInput {
  /** The endpoint's path, with the app's prefix. */
  readonly path: string
  readonly events: EventRegistry
  /** The `handle()` types and their data schemas. */
  readonly messages: ReadonlyMap<string, TSchema>
  readonly info: AsyncApiInfo
}

interface Message {
  readonly name: string
  readonly summary: string
  readonly payload: TSchema
  /** It carries an `id` that its answer (or the message it answers) repeats. */
  readonly correlated: boolean
  /** Keys of the messages that answer it. */
  readonly replies?: readonly string[]
}

const CHANNEL = 'realtime'
const channelRef = { $ref: `#/channels/${CHANNEL}` }
const answered = ['ack', 'error']

/** The control messages of the catalog, keyed as they appear in the document. */
const group = (from: 'client' | 'server'): Record<string, Message> =>
  Object.fromEntries(
    CATALOG.filter((m) => m.from === from).map((m) => [
      m.key,
      { name: m.type, summary: m.summary, payload: m.schema, correlated: m.correlated, replies: m.replies }
    ])
  )
const CLIENT = group('client')
const SERVER = group('server')

/** A key the document accepts (`^[A-Za-z0-9.\-_]+$`), unique among `used`. */
function keyFor(prefix: string, name: string, used: Set<string>): string {
  let key = `${prefix}${name.replace(/:/g, '.').replace(/[^A-Za-z0-9.\-_]/g, '_')}`
  while (used.has(key)) key += '_'
  used.add(key)
  return key
}

/** A TypeBox schema as the plain JSON Schema it is (TypeBox's own symbol keys left out). */
const json = (schema: TSchema): unknown => JSON.parse(JSON.stringify(schema))

/**
 * The `realtime.v1` endpoint of this app as an AsyncAPI 3.0 document: one channel (the endpoint), a message for every
 * control type, every registry event and every `handle()` type, with their TypeBox schemas as payloads, and one
 * operation per message (`receive` for what clients send, `send` for what the server sends). A frontend in another
 * language generates its types from it.
 */
export function asyncapiDocument(input: AsyncApiInput): AsyncApiDocument {
  const used = new Set([...Object.keys(CLIENT), ...Object.keys(SERVER), 'serverRequest'])
  const received: Record<string, Message> = { ...CLIENT }
  for (const [type, schema] of input.messages) {
    received[keyFor('message.', type, used)] = {
      name: type,
      summary: `The application message "${type}"`,
      payload: S.messageOf(type, schema),
      correlated: true,
      replies: answered
    }
  }
  const sent: Record<string, Message> = { ...SERVER }
  const requests: TSchema[] = []
  for (const [type, schema] of Object.entries(input.events)) {
    sent[keyFor('event.', type, used)] = {
      name: type,
      summary: `The event "${type}", to the subscribers of a room`,
      payload: S.eventOf(type, schema),
      correlated: false
    }
    requests.push(S.requestOf(type, schema))
  }
  if (requests.length > 0) {
    sent.serverRequest = {
      name: 'request',
      summary: 'A registry type sent as a server request (request()); answer it with reply and the same id',
      payload: Type.Union(requests),
      correlated: true,
      replies: ['reply']
    }
  }

  const messages: Record<string, unknown> = {}
  const channelMessages: Record<string, unknown> = {}
  const operations: Record<string, unknown> = {}
  const ref = (key: string) => ({ $ref: `#/channels/${CHANNEL}/messages/${key}` })
  const add = (action: 'send' | 'receive', group: Record<string, Message>): void => {
    for (const [key, message] of Object.entries(group)) {
      messages[key] = {
        name: message.name,
        title: message.name,
        summary: message.summary,
        payload: json(message.payload),
        ...(message.correlated ? { correlationId: { location: '$message.payload#/id' } } : {})
      }
      channelMessages[key] = { $ref: `#/components/messages/${key}` }
      operations[`${action}.${key}`] = {
        action,
        channel: channelRef,
        summary: message.summary,
        messages: [ref(key)],
        ...(message.replies === undefined ? {} : { reply: { channel: channelRef, messages: message.replies.map(ref) } })
      }
    }
  }
  add('receive', received)
  add('send', sent)

  return {
    asyncapi: '3.0.0',
    info: {
      title: input.info.title ?? 'Real-time API',
      version: input.info.version ?? '1.0.0',
      description:
        input.info.description ??
        `The ${SUBPROTOCOL} WebSocket protocol of this application: one JSON object per text frame. Operations are described from the server's side: it receives what clients send and sends the rest.`
    },
    defaultContentType: 'application/json',
    channels: {
      [CHANNEL]: {
        address: input.path,
        title: SUBPROTOCOL,
        description:
          'The WebSocket endpoint. Offer the subprotocol realtime.v1 and authenticate before the upgrade: Authorization: Bearer <jwt>, or the subprotocol bearer.<jwt> from a browser.',
        messages: channelMessages
      }
    },
    operations,
    components: {
      messages,
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'Verified before the upgrade; a failure is an HTTP 401'
        }
      }
    }
  }
}
