import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Publication } from '../adapters/adapter.js'
import type { AguiCore } from './core.js'
import { eventId } from './run.js'
import type { SseWriter } from './sse.js'
import type { Waiters } from './waiters.js'

/** How often a re-attached stream reads the log of a run that runs on another instance. */
const POLL = 100

/**
 * `GET <url>?threadId=…&runId=…`: the run's events after `Last-Event-ID` (all of them without it), from the run's log
 * room, then its live events until RUN_FINISHED or RUN_ERROR. It works on any instance that shares the adapter.
 */
export async function reattach(
  core: AguiCore,
  waiters: Waiters,
  log: string,
  request: FastifyRequest,
  reply: FastifyReply,
  open: () => SseWriter
): Promise<FastifyReply> {
  const policy = core.policyOf(log)
  const head = await core.adapter.history(log, {}, policy)
  if (head.position.seq === 0)
    return reply.code(404).send({ statusCode: 404, code: 'unknown_run', message: 'no such run (or its log has expired)' })
  const last = request.headers['last-event-id']
  let since = 0
  let epoch = head.position.epoch
  if (last !== undefined) {
    const match = /^(\d+):(.+)$/.exec(String(last))
    if (match === null) {
      return reply
        .code(400)
        .send({ statusCode: 400, code: 'invalid_last_event_id', message: 'Last-Event-ID must be an id this route sent' })
    }
    since = Number(match[1])
    epoch = match[2] as string
  }
  let events = (await core.adapter.history(log, { since, epoch }, policy)).events
  if (events === undefined) {
    return reply.code(410).send({
      statusCode: 410,
      code: 'resume_gap',
      message: 'the run log no longer holds the events after Last-Event-ID (raise history.size or history.ttl for agui: rooms)'
    })
  }
  const writer = open()
  while (events !== undefined && !writer.closed) {
    for (const pub of events) {
      if (write(writer, pub, epoch)) return reply
      since = pub.seq
    }
    await waiters.wait(log, POLL)
    events = (await core.adapter.history(log, { since, epoch }, policy)).events
  }
  // The log lost events meanwhile: the client reconnects and is told so (410).
  writer.end()
  return reply
}

/** Writes one logged event; true when it ends the run (the stream is then ended). */
function write(writer: SseWriter, pub: Publication, epoch: string): boolean {
  const { type, data } = JSON.parse(pub.frame.toString()) as { type: string; data: object }
  writer.event(eventId(pub.seq, epoch), JSON.stringify({ type, ...data }))
  if (type !== 'RUN_FINISHED' && type !== 'RUN_ERROR') return false
  writer.end()
  return true
}
