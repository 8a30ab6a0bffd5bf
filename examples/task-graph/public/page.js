// The task-graph page: plain JavaScript on fastify-realtime/client, served from the package build. The graph comes
// from the state room `graph:<id>` (the value once, then JSON Patches); the event log and the review question from
// the room `tasks:<id>`.
import { createClient } from '/client.js'

const $ = (id) => document.getElementById(id)

/** Makes an element; text is never parsed as HTML. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (key === 'dataset') Object.assign(el.dataset, value)
    else if (key === 'class') el.className = value
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value)
    else el.setAttribute(key, String(value))
  }
  for (const child of children) if (child !== undefined && child !== null) el.append(child)
  return el
}

const bytes = (text) => new TextEncoder().encode(text).length
const params = new URLSearchParams(location.search)
const user = /^[A-Za-z0-9_-]{1,64}$/.test(params.get('user') ?? '') ? params.get('user') : 'demo'

const client = createClient({
  url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
  token: async () => {
    const res = await fetch(`/dev/token?user=${encodeURIComponent(user)}`)
    if (!res.ok) throw new Error(`GET /dev/token answered ${res.status}`)
    return (await res.json()).token
  },
  // By default the client tries the WebSocket, then Server-Sent Events. ?ws=off goes straight to SSE, to try it.
  ...(params.get('ws') === 'off' ? { transports: ['sse'] } : {}),
  reconnect: { initialDelay: 300, maxDelay: 5000 }
})

client.onStateChange((state) => {
  $('conn').dataset.state = state
  $('conn').textContent = state
  $('start').disabled = state !== 'open'
  if (state === 'open') {
    $('transport').dataset.transport = client.transport
    $('transport').textContent = client.transport === 'sse' ? 'SSE' : 'WebSocket'
  }
})

// One graph on screen at a time, named in the URL (#g-…) so that a reload or a shared link opens it again.
const GRAPH_ID = /^g-[0-9a-f]{8}$/
let graph

$('start-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  const graphId = `g-${crypto.getRandomValues(new Uint32Array(1))[0].toString(16).padStart(8, '0')}`
  history.replaceState(null, '', `${location.search}#${graphId}`)
  // Subscribed first, so that the graph reaches this page as patches from its first version on.
  const subscribed = open(graphId)
  $('start-error').hidden = true
  try {
    await subscribed
    const goal = $('goal').value.trim()
    await client.send('graph:start', { graphId, goal, answerWithinS: Number($('answer-within').value) })
  } catch (err) {
    $('start-error').hidden = false
    $('start-error').textContent = `The planner did not start: ${err.code}: ${err.message}`
  }
})

/** Follows a graph; resolves once its state room answered the first subscribe. */
function open(graphId) {
  graph?.live.unsubscribe()
  graph?.events.unsubscribe()
  $('graph').hidden = false
  $('graph-id').textContent = graphId
  $('log').replaceChildren()
  const current = { id: graphId, room: `tasks:${graphId}`, value: undefined, seqs: new Set(), replaying: false }
  graph = current
  const wire = { whole: 0, patches: 0, patchBytes: 0 }
  // The graph: the whole value when subscribing (or after a gap), then each change as the JSON Patch that made it.
  let subscribed
  const first = new Promise((resolve) => {
    subscribed = resolve
  })
  current.live = client.liveState(
    `graph:${graphId}`,
    (value, ops) => {
      if (current !== graph) return
      if (ops === undefined) wire.whole++
      else {
        wire.patches++
        wire.patchBytes += bytes(JSON.stringify(ops))
      }
      current.value = value
      drawWire(wire, value)
      drawGraph(value)
    },
    {
      onSubscribed: () => subscribed(),
      onError: (err) => {
        logLine('error', `graph:${graphId}: ${err.code}: ${err.message}`)
        subscribed()
      }
    }
  )
  // The event log. A page that arrives after the first events (a reload, a shared link) replays the room from its start.
  const subscribe = (from) => {
    current.events = client.subscribe(current.room, (event) => current === graph && logEvent(event), {
      ...from,
      onSubscribed: ({ recovered, seq, epoch }) => {
        if (current !== graph || recovered || seq === 0 || current.replaying) return
        current.replaying = true
        subscribe({ since: 0, epoch })
      },
      onError: (err) => logLine('error', `${current.room}: ${err.code}: ${err.message}`)
    })
  }
  subscribe({})
  return first
}

function drawWire(wire, value) {
  $('wire').dataset.whole = String(wire.whole)
  $('wire').dataset.patches = String(wire.patches)
  $('wire-whole').textContent = String(wire.whole)
  $('wire-patches').textContent = String(wire.patches)
  $('wire-patch-bytes').textContent = `${wire.patchBytes.toLocaleString('en')} B`
  $('wire-graph-bytes').textContent = value === undefined ? '—' : `${bytes(JSON.stringify(value)).toLocaleString('en')} B`
}

function drawGraph(value) {
  $('raw').textContent = value === undefined ? '' : JSON.stringify(value, null, 2)
  $('graph-version').textContent = `version ${graph.live.version}`
  if (value === undefined) return
  $('graph-goal').textContent = value.goal
  $('graph-status').dataset.status = value.status
  $('graph-status').textContent = value.status
  $('graph-progress').setAttribute('aria-valuenow', String(value.progress))
  $('graph-bar').style.width = `${value.progress}%`
  $('nodes').replaceChildren(
    ...value.order.map((id) => {
      const node = value.nodes[id]
      const bar = h('div', { class: 'bar' }, h('div'))
      bar.firstChild.style.width = `${node.progress}%`
      return h(
        'li',
        { class: 'node', dataset: { id, status: node.status } },
        h('span', { class: 'status' }, node.attempt > 1 ? `${node.status} · attempt ${node.attempt}` : node.status),
        h('b', {}, node.name),
        bar,
        node.deps.length > 0 ? h('div', { class: 'deps' }, `after ${node.deps.join(', ')}`) : undefined,
        node.note ? h('div', { class: 'note' }, node.note) : undefined
      )
    })
  )
  drawReview()
}

// The review: what it asks and how it ended come from the graph; the question to answer, from the client's list of
// open questions (`app.realtime.ask()` on the server), so the first answer from any window wins.

client.onQuestions(() => drawReview())

function drawReview() {
  const review = graph?.value?.review
  $('review').hidden = review === undefined
  if (review === undefined) return
  const question = client.questions().find((q) => q.room === graph.room && q.data.requestId === review.requestId)
  const card = $('review')
  const state = review.status === 'open' && question === undefined ? 'settling' : review.status
  if (card.dataset.state === state && card.dataset.request === review.requestId) return
  card.dataset.state = state
  card.dataset.request = review.requestId
  $('review-text').textContent = review.text
  const label = (id) => review.options.find((o) => o.id === id)?.label ?? id
  $('review-state').textContent =
    review.status === 'timeout'
      ? `Timed out: no answer in time, the planner went on with “${label(review.answer)}”.`
      : review.status === 'answered'
        ? `Answered: “${label(review.answer)}”.`
        : `Answer by ${new Date(review.deadline).toLocaleTimeString()}, or the planner goes on with “${label(review.fallback)}”.`
  $('review-options').replaceChildren(
    ...review.options.map((option) =>
      h(
        'button',
        {
          type: 'button',
          class: `btn ${option.id === review.fallback ? 'primary' : ''}`,
          dataset: { option: option.id },
          onclick: () => answer(question, option)
        },
        option.label
      )
    )
  )
  for (const button of $('review-options').querySelectorAll('button')) button.disabled = state !== 'open'
}

async function answer(question, option) {
  for (const button of $('review-options').querySelectorAll('button')) button.disabled = true
  try {
    await client.reply(question.id, { optionId: option.id })
  } catch (err) {
    $('review-state').textContent = err.code === 'already_answered' ? 'Answered in another window first.' : `Not sent: ${err.message}`
  }
}

// The event log: task updates, node statuses, notices and the question, as the room carries them.

function logEvent(event) {
  if (event.seq !== undefined) {
    if (graph.seqs.has(event.seq)) return
    graph.seqs.add(event.seq)
  }
  const { data } = event
  const text =
    event.type === 'task_update'
      ? `${data.status} ${data.progress} %${data.message ? ` · ${data.message}` : ''}`
      : event.type === 'node_status'
        ? `${data.nodeId} ${data.status}${data.progress === undefined ? '' : ` ${data.progress} %`}`
        : event.type === 'error_notification'
          ? `${data.severity}: ${data.message}`
          : event.type === 'hitl_request'
            ? `asks: ${data.question}`
            : JSON.stringify(data)
  logLine(event.type, text, event.seq)
}

function logLine(type, text, seq) {
  const item = h('li', { dataset: { type, ...(seq === undefined ? {} : { seq: String(seq) }) } }, h('span', { class: 'type' }, type), text)
  $('log').prepend(item)
  $('log-count').textContent = String($('log').children.length)
}

const initial = location.hash.slice(1)
if (GRAPH_ID.test(initial)) open(initial)
