import type { TSchema } from '@sinclair/typebox'
import type { EventRegistry } from '../events.js'
import * as S from './schemas.js'

export interface OpenApiDocument {
  readonly openapi: string
  readonly [key: string]: unknown
}

type Operation = {
  summary: string
  body?: TSchema
  ok: TSchema | undefined
  status?: number
  query?: Record<string, string>
  params?: string[]
}

const ref = (schema: TSchema) => ({ $ref: `#/components/schemas/${schema.$id}` })

/** A schema as the document holds it: TypeBox's JSON Schema, without its `$id` (the component's name says it). */
function plain(schema: TSchema): unknown {
  return JSON.parse(JSON.stringify(schema, (key, value) => (key === '$id' ? undefined : value)))
}

/**
 * The server API as an OpenAPI 3.1 document, built from the same TypeBox schemas the routes validate with. Each
 * registry event's data schema is listed under `components.schemas` as `event.<type>`, for the `data` of a publish.
 */
export function openapiDocument({ base, events }: { base: string; events: EventRegistry }): OpenApiDocument {
  const operations: Record<string, Record<string, Operation>> = {
    '/publish': { post: { summary: 'Publish one event to a room', body: S.PublishBody, ok: S.Position } },
    '/batch': { post: { summary: 'Publish several events, in order', body: S.BatchBody, ok: S.BatchResult } },
    '/streams': { post: { summary: 'Open a token stream', body: S.StreamBody, ok: S.StreamOpened, status: 201 } },
    '/streams/{id}/append': {
      post: {
        summary: "Append text to a stream; the answer says whether the stream's run was cancelled",
        body: S.AppendBody,
        ok: S.Appended,
        params: ['id']
      }
    },
    '/streams/{id}/end': { post: { summary: 'End a stream: the whole event is published once', ok: S.Ended, params: ['id'] } },
    '/questions': {
      post: { summary: 'Ask a durable question; the first answer wins', body: S.QuestionBody, ok: S.QuestionPosed, status: 201 }
    },
    '/questions/{id}': {
      get: {
        summary: "A question's state; with ?wait=, waits for its answer",
        ok: S.QuestionState,
        params: ['id'],
        query: { wait: 'Seconds to wait for an answer' }
      }
    },
    '/runs': {
      post: { summary: 'Register a run that clients may cancel', body: S.RunBody, ok: S.RunState, status: 201 },
      get: {
        summary: "A run's state; with ?wait=, waits for a cancel",
        ok: S.RunState,
        query: { room: 'The run room', runId: 'The run id', wait: 'Seconds to wait for a cancel' }
      },
      delete: { summary: 'End a run', ok: undefined, status: 204, query: { room: 'The run room', runId: 'The run id' } }
    },
    '/cancel': { post: { summary: 'Cancel a run, on every instance', body: S.RunBody, ok: S.RunBody } },
    '/state': {
      get: { summary: "A state room's value and version", ok: S.StateValue, query: { room: 'The room' } },
      post: { summary: "Replace a state room's value; subscribers get the JSON Patch", body: S.StateBody, ok: S.StateChanged }
    },
    '/state/patch': {
      post: { summary: "Apply JSON Patch operations to a state room's value", body: S.StatePatchBody, ok: S.StateChanged }
    },
    '/presence': { get: { summary: 'The users present in a room', ok: S.Presence, query: { room: 'The room' } } },
    '/disconnect': { post: { summary: 'Close every connection of a user, on every instance', body: S.DisconnectBody, ok: S.Disconnected } },
    '/stats': { get: { summary: "This instance's counters", ok: S.Stats } }
  }
  const errors = Object.fromEntries(
    [
      ['400', 'Invalid request (`pointer` names the first problem)'],
      ['401', 'Not a server credential'],
      ['413', 'Body too large'],
      ['422', 'A state change that does not apply (a failed test, a missing path) or breaks the schema'],
      ['429', 'Rate limited (see Retry-After)'],
      ['503', 'The adapter (Redis) is unavailable']
    ].map(([status, description]) => [status, { description, content: { 'application/json': { schema: ref(S.ErrorBody) } } }])
  )
  const paths: Record<string, unknown> = {}
  for (const [path, methods] of Object.entries(operations)) {
    const item: Record<string, unknown> = {}
    for (const [method, op] of Object.entries(methods)) {
      const parameters = [
        ...(op.params ?? []).map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
        ...Object.entries(op.query ?? {}).map(([name, description]) => ({
          name,
          in: 'query',
          required: name !== 'wait',
          description,
          schema: name === 'wait' ? { type: 'integer', minimum: 0 } : { type: 'string' }
        }))
      ]
      const status = String(op.status ?? 200)
      item[method] = {
        summary: op.summary,
        ...(parameters.length > 0 ? { parameters } : {}),
        ...(op.body === undefined ? {} : { requestBody: { required: true, content: { 'application/json': { schema: ref(op.body) } } } }),
        responses: {
          [status]:
            op.ok === undefined
              ? { description: 'Done' }
              : { description: 'Done', content: { 'application/json': { schema: ref(op.ok) } } },
          ...errors
        }
      }
    }
    paths[`${base}${path}`] = item
  }
  const schemas: Record<string, unknown> = {}
  for (const schema of [
    S.PublishBody,
    S.Position,
    S.BatchBody,
    S.BatchResult,
    S.StreamBody,
    S.StreamOpened,
    S.AppendBody,
    S.Appended,
    S.Ended,
    S.QuestionBody,
    S.QuestionPosed,
    S.QuestionState,
    S.RunBody,
    S.RunState,
    S.Presence,
    S.StateBody,
    S.StatePatchBody,
    S.StateValue,
    S.StateChanged,
    S.DisconnectBody,
    S.Disconnected,
    S.Stats,
    S.ErrorBody
  ]) {
    schemas[schema.$id as string] = plain(schema)
  }
  // Component names allow letters, digits, `.`, `-` and `_` only.
  for (const [type, schema] of Object.entries(events)) schemas[`event.${type.replace(/[^A-Za-z0-9._-]/g, '_')}`] = plain(schema)
  return {
    openapi: '3.1.0',
    info: { title: 'fastify-realtime server API', version: '1' },
    paths,
    components: {
      schemas,
      securitySchemes: { serverKey: { type: 'http', scheme: 'bearer', description: 'A server API key or service token' } }
    },
    security: [{ serverKey: [] }]
  }
}
