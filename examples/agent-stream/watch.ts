/**
 * A minimal `realtime.v1` client of the AG-UI demo: subscribes to a new thread's room, starts a run with a POST on
 * the AG-UI route, prints each event, approves the interrupt, and exits 0 once RUN_FINISHED arrives (1 on RUN_ERROR,
 * an `error` frame or an unexpected close).
 *
 *   npx tsx examples/agent-stream/watch.ts --url ws://localhost:3000/ws --token <jwt> \
 *     [--start-url ws://localhost:3001/ws] [--prompt "…"] [--answer approve|reject] [--flaky] [--timeout <seconds>]
 *
 * With `--start-url` (instances sharing Redis), the run is started through that instance (its `/agent`), which runs
 * it, while the events printed, and the answer to the interrupt, go through `--url`.
 * The token may also come from the environment variable TOKEN.
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'

interface Frame {
  type: string
  id?: string
  room?: string
  seq?: number
  data?: any
  ts?: string
}

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'ws://localhost:3000/ws' },
    'start-url': { type: 'string' },
    token: { type: 'string' },
    prompt: { type: 'string', default: 'What changed in Fastify 5?' },
    answer: { type: 'string', default: 'approve' },
    flaky: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '120' }
  }
})

const token = values.token ?? process.env.TOKEN
if (token === undefined || token === '')
  fail('a token is required: pass --token <jwt> or set TOKEN (GET /dev/token?user=demo hands one out)')
if (values.answer !== 'approve' && values.answer !== 'reject') fail(`--answer must be approve or reject (got "${values.answer}")`)

let done = false
const seconds = Number(values.timeout)
if (!(seconds > 0)) fail(`--timeout must be a positive number of seconds (got "${values.timeout}")`)
const deadline = setTimeout(() => fail(`no result within ${seconds} s`), seconds * 1000)

function fail(message: string): never {
  console.error(`watch: ${message}`)
  process.exit(1)
}

function clip(value: unknown, max = 90): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/** One short line about an AG-UI event, by type; other types get their JSON. */
function summarize(type: string, data: any): string {
  switch (type) {
    case 'RUN_STARTED':
    case 'RUN_FINISHED':
      return data.result === undefined ? `run ${data.runId}` : clip(data.result.summary ?? data.result)
    case 'RUN_ERROR':
      return `${data.code ?? ''} ${data.message}`.trim()
    case 'TEXT_MESSAGE_START':
    case 'TEXT_MESSAGE_END':
      return `message ${data.messageId.slice(0, 8)}`
    case 'TEXT_MESSAGE_CONTENT':
      return clip(data.delta)
    case 'TOOL_CALL_START':
      return `${data.toolCallName} (call ${data.toolCallId.slice(0, 8)})`
    case 'TOOL_CALL_ARGS':
      return clip(data.delta)
    case 'TOOL_CALL_END':
      return `call ${data.toolCallId.slice(0, 8)}`
    case 'TOOL_CALL_RESULT':
      return `→ ${clip(data.content, 80)}`
    case 'STATE_SNAPSHOT':
      return `${data.snapshot.message} ${data.snapshot.progress}%`
    case 'STATE_DELTA':
      return clip(data.delta.map((op: { path: string; value?: unknown }) => `${op.path}=${JSON.stringify(op.value)}`).join(' '))
    case 'STEP_STARTED':
    case 'STEP_FINISHED':
      return data.stepName
    case 'CUSTOM':
      return data.name === 'notice' ? `[${data.value.severity}] ${data.value.message}` : `${data.name} ${clip(data.value, 70)}`
    case 'hitl_resolved':
      return `${data.status}${data.by ? ` by ${data.by}` : ''}`
    case 'join':
    case 'leave':
      return `${data.user} (presence)`
    default:
      return clip(data)
  }
}

function print(kind: string, type: string, text: string): void {
  console.log(`${kind.padStart(4)}  ${type.padEnd(20)} ${text}`)
}

function send(ws: WebSocket, frame: Frame): void {
  ws.send(JSON.stringify(frame))
}

/** The AG-UI route of the instance whose WebSocket is at `wsUrl`: same host, `/agent` in place of `/ws`. */
function agentUrl(wsUrl: string): string {
  const url = new URL(wsUrl)
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:'
  url.pathname = url.pathname.replace(/\/ws$/, '/agent')
  return url.toString()
}

// One run per thread: the thread is named like the run, as the dashboard does.
const threadId = `run-${randomBytes(4).toString('hex')}`
const room = `agui:${threadId}`
const startUrl = values['start-url'] ?? values.url

/** Starts the run: the AG-UI route answers with its events as text/event-stream, which come over the WebSocket too. */
async function startRun(): Promise<void> {
  const url = agentUrl(startUrl)
  const input = {
    threadId,
    runId: threadId,
    messages: [{ id: randomUUID(), role: 'user', content: values.prompt }],
    state: {},
    tools: [],
    context: [],
    forwardedProps: { flaky: values.flaky }
  }
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(input)
  })
  if (!res.ok) fail(`POST ${url} answered HTTP ${res.status}: ${await res.text()}`)
  print('', 'POST', `run ${threadId} started on ${startUrl} (${url})`)
  // This copy of the events is not read; going away does not cancel the run.
  await res.body?.cancel()
}

/** Answers the approval interrupt: a `reply` to the question, by its id, in the thread's room. */
function answerInterrupt(ws: WebSocket, frame: Frame & { id: string }): void {
  const choices = (frame.data.value.metadata?.options ?? []).map((o: { id: string }) => o.id).join('|')
  print('?', 'interrupt', `${frame.data.value.message} [${choices}] → ${values.answer}`)
  send(ws, { type: 'reply', id: frame.id, room, data: { status: 'resolved', payload: { approved: values.answer === 'approve' } } })
}

/**
 * Browsers cannot set headers, so the token travels as a second subprotocol; it never goes in the URL. The run is
 * started once the room is subscribed, so no event of it is missed.
 */
let started = false
const ws = new WebSocket(values.url, ['realtime.v1', `bearer.${token}`])
ws.on('message', (raw) => {
  const parsed: Frame | Frame[] = JSON.parse(String(raw))
  // A server may batch several envelopes in one frame as a JSON array.
  for (const frame of Array.isArray(parsed) ? parsed : [parsed]) onFrame(frame)
})

function onFrame(frame: Frame): void {
  switch (frame.type) {
    case 'ready':
      print('', 'ready', `connection ${frame.data.connectionId} as ${frame.data.userId} on ${values.url}`)
      send(ws, { type: 'subscribe', id: 'sub', room })
      return
    case 'subscribed':
      print('', 'subscribed', `${frame.room} (seq ${frame.data.seq}, epoch ${frame.data.epoch})`)
      if (started) return
      started = true
      startRun().catch((err: Error) => fail(`the run did not start: ${err.message}`))
      return
    case 'error':
      fail(`server error ${frame.data?.code}: ${frame.data?.message}`)
      return
    // Answers to our messages; and a text message's token stream, whose whole text comes in TEXT_MESSAGE_CONTENT.
    case 'ack':
    case 'pong':
    case 'stream':
    case 'delta':
      return
  }
  print(frame.seq === undefined ? '~' : `#${frame.seq}`, frame.type, summarize(frame.type, frame.data))
  // An event with an id is a question (the interrupt), open until its hitl_resolved.
  if (frame.type === 'CUSTOM' && frame.id !== undefined && frame.data.name === 'interrupt')
    answerInterrupt(ws, frame as Frame & { id: string })
  if (frame.type === 'RUN_ERROR') fail(`the run failed: ${summarize(frame.type, frame.data)}`)
  if (frame.type === 'RUN_FINISHED') {
    done = true
    clearTimeout(deadline)
    ws.close(1000, 'done')
  }
}

// The upgrade was refused (401, 403, …): the body is Fastify's JSON error, whose message says why.
ws.on('unexpected-response', (_req, res) => {
  let body = ''
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => {
    body += chunk
  })
  res.on('end', () => {
    let message = body
    try {
      message = JSON.parse(body).message ?? body
    } catch {}
    fail(`connection to ${values.url} refused with HTTP ${res.statusCode}: ${message}`)
  })
})
ws.on('error', (err) => fail(err.message))
ws.on('close', (code, reason) => {
  if (done && code === 1000) return
  fail(`connection to ${values.url} closed unexpectedly (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`)
})
