/**
 * A minimal `realtime.v1` client: starts a run, watches its room, answers the approval question,
 * and exits 0 once the run's `agent:result` arrives (1 on an `error` frame or an unexpected close).
 *
 *   npx tsx examples/agent-stream/watch.ts --url ws://localhost:3000/ws --token <jwt> \
 *     [--start-url ws://localhost:3001/ws] [--prompt "…"] [--answer approve|reject] [--timeout <seconds>]
 *
 * With `--start-url` (instances sharing Redis), the run is started through that instance, which runs it and asks
 * the question there, while the events printed are the ones that arrive through `--url`.
 * The token may also come from the environment variable TOKEN.
 */
import { parseArgs } from 'node:util'
import WebSocket from 'ws'

interface Frame {
  type: string
  id?: string
  room?: string
  seq?: number
  data?: any
  ts?: string
  error?: { code: string; message: string }
}

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: 'ws://localhost:3000/ws' },
    'start-url': { type: 'string' },
    token: { type: 'string' },
    prompt: { type: 'string', default: 'What changed in Fastify 5?' },
    answer: { type: 'string', default: 'approve' },
    timeout: { type: 'string', default: '120' }
  }
})

const token = values.token ?? process.env.TOKEN
if (token === undefined || token === '')
  fail('a token is required: pass --token <jwt> or set TOKEN (GET /dev/token?user=demo hands one out)')

let done = false
const seconds = Number(values.timeout)
if (!(seconds > 0)) fail(`--timeout must be a positive number of seconds (got "${values.timeout}")`)
const deadline = setTimeout(() => fail(`no result within ${seconds} s`), seconds * 1000)

function fail(message: string): never {
  console.error(`watch: ${message}`)
  process.exit(1)
}

function send(ws: WebSocket, frame: Frame): void {
  ws.send(JSON.stringify(frame))
}

function clip(value: unknown, max = 90): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value)
  return text.length > max ? `${text.slice(0, max - 1)}…` : text
}

/** One short line about an event's data, by type; unknown types get their JSON. */
function summarize(type: string, data: any): string {
  switch (type) {
    case 'task_update':
      return `${data.status} ${data.progress}%${data.message ? ` ${data.message}` : ''}`
    case 'node_status':
      return `${data.nodeId} ${data.status}`
    case 'agent:thought':
      return clip(data.content)
    case 'agent:tool_call': {
      const detail = data.status === 'succeeded' ? `→ ${clip(data.output, 60)}` : data.args ? clip(data.args, 60) : ''
      return `${data.tool} ${data.status} ${detail}`.trimEnd()
    }
    case 'agent:result':
      return clip(data.summary ?? data.output)
    case 'error_notification':
      return `[${data.severity}] ${data.message}`
    case 'join':
    case 'leave':
      return `${data.user} (presence)`
    default:
      return clip(data)
  }
}

function print(kind: string, type: string, text: string): void {
  console.log(`${kind.padStart(4)}  ${type.padEnd(16)} ${text}`)
}

/**
 * One connection. Browsers cannot set headers, so the token travels as a second subprotocol; it never goes in the
 * URL. `onReady` runs once `ready` arrives; `onFrame` gets every frame after that.
 */
function connect(url: string, onReady: () => void, onFrame: (frame: Frame) => void): WebSocket {
  const ws = new WebSocket(url, ['realtime.v1', `bearer.${token}`])
  ws.on('message', (raw) => {
    const parsed: Frame | Frame[] = JSON.parse(String(raw))
    // A server may batch several envelopes in one frame as a JSON array.
    for (const frame of Array.isArray(parsed) ? parsed : [parsed]) {
      if (frame.type === 'ready') {
        print('', 'ready', `connection ${frame.data.connectionId} as ${frame.data.userId} on ${url}`)
        onReady()
      } else if (frame.type === 'error') fail(`server error ${frame.data?.code}: ${frame.data?.message}`)
      else onFrame(frame)
    }
  })
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
      fail(`connection to ${url} refused with HTTP ${res.statusCode}: ${message}`)
    })
  })
  ws.on('error', (err) => fail(err.message))
  ws.on('close', (code, reason) => {
    if (done && code === 1000) return
    fail(`connection to ${url} closed unexpectedly (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`)
  })
  return ws
}

/** Answers and notices of the protocol itself, as opposed to events and server requests. */
const CONTROL = new Set(['ack', 'subscribed', 'unsubscribed', 'pong', 'presence', 'join', 'leave'])

/** A server request (not a control message, with an `id` and no `seq`): answered with `reply` and the same `id`. */
function isRequest(frame: Frame): frame is Frame & { id: string } {
  return !CONTROL.has(frame.type) && frame.id !== undefined && frame.seq === undefined
}

function onRequest(ws: WebSocket, frame: Frame & { id: string }): void {
  const { id } = frame
  if (frame.type !== 'hitl_request') {
    send(ws, { type: 'reply', id, error: { code: 'unsupported', message: `watch cannot answer "${frame.type}"` } })
    return
  }
  const choices = (frame.data.options ?? []).map((o: { id: string }) => o.id).join('|')
  print('?', frame.type, `${frame.data.question} [${choices}] → ${values.answer}`)
  send(ws, { type: 'reply', id, data: { optionId: values.answer } })
}

// The events are read through `watcher`. The run is started through `starter`: the same connection, or one to
// another instance. The run waits until its starter has subscribed, and asks its question to the subscribers of the
// instance it runs on, so a separate starter subscribes too (after the watcher, which thus misses nothing) and
// answers the question, while its copies of the events are left unprinted.
const startUrl = values['start-url']
let waiting = startUrl === undefined ? 1 : 2
const whenBothReady = (): void => {
  if (--waiting === 0) send(starter, { type: 'run:start', id: '1', data: { prompt: values.prompt } })
}

const watcher = connect(values.url, whenBothReady, (frame) => {
  switch (frame.type) {
    case 'ack':
      if (frame.id === '1') {
        print('', 'ack', `run ${frame.data.runId} started; subscribing to ${frame.data.room}`)
        send(watcher, { type: 'subscribe', id: '2', room: frame.data.room })
      }
      return
    case 'subscribed':
      print('', 'subscribed', `${frame.room} (seq ${frame.data.seq}, epoch ${frame.data.epoch})`)
      if (starter !== watcher) send(starter, { type: 'subscribe', id: '3', room: frame.room })
      return
    case 'pong':
    case 'unsubscribed':
      return
  }
  if (isRequest(frame)) {
    onRequest(watcher, frame)
    return
  }
  print(frame.seq === undefined ? '~' : `#${frame.seq}`, frame.type, summarize(frame.type, frame.data))
  if (frame.type === 'agent:result') {
    done = true
    clearTimeout(deadline)
    for (const ws of new Set([watcher, starter])) ws.close(1000, 'done')
  }
})

const starter: WebSocket =
  startUrl === undefined
    ? watcher
    : connect(startUrl, whenBothReady, (frame) => {
        if (frame.type === 'ack' && frame.id === '1') {
          print('', 'ack', `run ${frame.data.runId} started on ${startUrl}; subscribing to ${frame.data.room} on ${values.url}`)
          send(watcher, { type: 'subscribe', id: '2', room: frame.data.room })
        } else if (isRequest(frame)) onRequest(starter, frame)
      })
