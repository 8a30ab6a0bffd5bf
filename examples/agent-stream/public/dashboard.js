// The agent-stream dashboard: plain JavaScript on fastify-realtime/client, served from the package build.
import { createClient } from '/client.js'

const $ = (id) => document.getElementById(id)

/** Makes an element: `h('li', { class: 'x', dataset: { seq: 1 } }, 'text', child)`. Text is never parsed as HTML. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue
    if (key === 'dataset') Object.assign(el.dataset, value)
    else if (key === 'class') el.className = value
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value)
    else el.setAttribute(key, value === true ? '' : String(value))
  }
  for (const child of children.flat()) if (child !== undefined && child !== null) el.append(child)
  return el
}

const time = (ts) => (ts ? new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '')
const clip = (text, max = 120) => (text.length > max ? `${text.slice(0, max - 1)}…` : text)

// Who is signing in: ?user=<name>, else a name this tab keeps.
const NAMES = ['ada', 'alan', 'barbara', 'dennis', 'edsger', 'grace', 'ken', 'linus', 'margaret', 'radia', 'tim', 'yukihiro']
function pickUser() {
  const given = new URLSearchParams(location.search).get('user')
  if (given && /^[A-Za-z0-9_-]{1,64}$/.test(given)) return given
  let kept = sessionStorage.getItem('agent-stream:user')
  if (!kept) {
    kept = `${NAMES[Math.floor(Math.random() * NAMES.length)]}-${Math.floor(10 + Math.random() * 90)}`
    sessionStorage.setItem('agent-stream:user', kept)
  }
  return kept
}
const me = pickUser()

// The token comes from the example's dev route; the client asks again on every reconnect and before it expires.
let token
async function fetchToken() {
  const res = await fetch(`/dev/token?user=${encodeURIComponent(me)}`)
  if (!res.ok) throw new Error(`GET /dev/token answered ${res.status}`)
  token = (await res.json()).token
  return token
}

const client = createClient({
  url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
  token: fetchToken,
  reconnect: { initialDelay: 300, maxDelay: 5000 }
})

// Connection badge: connecting → connected → reconnecting → recovered (or resynced when the history fell short).

let reconnects = 0
let resuming = false

function badge(state, text) {
  $('badge').dataset.state = state
  $('badge-text').textContent = text
}

client.onStateChange((state, previous) => {
  $('drop').disabled = state !== 'open'
  $('start').disabled = state === 'closed'
  $('fact-conn').textContent = client.connectionId ?? '—'
  if (state === 'open') {
    if (previous === 'reconnecting' && run !== undefined) {
      resuming = true
      badge('resuming', 'Resuming…')
    } else badge('connected', 'Connected')
  } else if (state === 'reconnecting') {
    reconnects++
    $('fact-reconnects').textContent = String(reconnects)
    badge('reconnecting', 'Reconnecting…')
    withdrawQuestion('The connection dropped, so the server stopped waiting for this answer here.')
  } else if (state === 'closed') badge('closed', 'Disconnected')
})

$('drop').addEventListener('click', async () => {
  $('drop').disabled = true
  const res = await fetch('/dev/drop', {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ connectionId: client.connectionId })
  })
  if (!res.ok) notice('error', `Could not drop the connection (HTTP ${res.status}).`)
})

$('me').textContent = me
$('me').prepend(avatar(me))
$('fact-user').textContent = me

// Runs: start one, or open the one named in the URL (#run-…), e.g. from a shared link.

/** The run on screen: its subscription and what has been drawn of it. */
let run

$('start-form').addEventListener('submit', async (ev) => {
  ev.preventDefault()
  $('start').disabled = true
  try {
    const { runId } = await client.send('run:start', { prompt: $('prompt').value.trim() || undefined, flaky: $('flaky').checked })
    history.replaceState(null, '', `#${runId}`)
    openRun(runId)
  } catch (err) {
    notice('error', `The run did not start: ${err.message}`)
  } finally {
    $('start').disabled = client.state === 'closed'
  }
})

window.addEventListener('hashchange', () => {
  const runId = location.hash.slice(1)
  if (/^run-[0-9a-f]{8}$/.test(runId) && runId !== run?.id) openRun(runId)
})

function openRun(runId) {
  run?.sub.unsubscribe()
  const room = `workflow:${runId}`
  run = { id: runId, room, sub: undefined, calls: new Map(), nodes: new Map(), seqs: new Set(), subscribed: false }
  const current = run
  resetRun(runId, room)
  current.sub = client.subscribe(room, (event) => current === run && onEvent(event), {
    onSubscribed: (info) => current === run && onSubscribed(info),
    onPresence: (members, change) => current === run && drawPeople(members, change),
    onError: (err) => current === run && notice('error', `${room}: ${err.code}: ${err.message}`)
  })
}

function resetRun(runId, room) {
  $('empty').hidden = true
  $('run').hidden = false
  $('run-id').textContent = runId
  const link = `${location.origin}/#${runId}`
  $('share-link').href = link
  $('share-link').textContent = link
  $('fact-room').textContent = room
  $('fact-seq').textContent = '—'
  for (const id of ['timeline', 'events', 'nodes', 'notices', 'result-sources']) $(id).replaceChildren()
  $('result').hidden = true
  $('question').hidden = true
  $('events-count').textContent = ''
  setTask({ status: 'queued', progress: 0, message: 'Waiting for the first event…' })
}

/** `subscribed`: the first time, and after each reconnect. */
function onSubscribed({ recovered, seq, snapshot }) {
  const first = !run.subscribed
  run.subscribed = true
  if (!recovered) {
    // A fresh view: the run so far from the snapshot (events up to `seq`; later ones arrive live).
    resetRun(run.id, run.room)
    run.calls.clear()
    run.nodes.clear()
    run.seqs.clear()
    if (snapshot?.known === false)
      notice(
        'warning',
        'This server holds nothing of this run so far (runs are kept in the memory of the instance running them); new events still arrive.'
      )
    for (const event of snapshot?.events ?? []) if (event.seq <= seq) onEvent({ ...event, room: run.room })
  }
  if (resuming || !first) {
    resuming = false
    if (recovered) badge('recovered', `Recovered · resumed after #${seq}`)
    else badge('resynced', 'Reconnected · redrawn')
  }
}

// Events

function onEvent(event) {
  if (event.seq !== undefined) {
    if (run.seqs.has(event.seq)) return
    run.seqs.add(event.seq)
    $('fact-seq').textContent = String(event.seq)
  }
  logEvent(event)
  const { data } = event
  switch (event.type) {
    case 'task_update':
      setTask(data)
      if (data.status !== 'waiting') settleQuestion()
      break
    case 'node_status':
      setNode(data)
      break
    case 'agent:thought':
      $('timeline').append(
        h(
          'li',
          { class: 'item thought' },
          h('span', { class: 'icon', 'aria-hidden': 'true' }),
          h(
            'div',
            { class: 'body' },
            h('div', { class: 'meta' }, `Thought${data.step === undefined ? '' : ` ${data.step + 1}`}`, h('time', {}, time(event.ts))),
            h('p', {}, data.content)
          )
        )
      )
      break
    case 'agent:tool_call':
      setToolCall(data, event.ts)
      break
    case 'agent:result':
      settleQuestion()
      showResult(data)
      break
    case 'agent:error':
      notice('error', `${data.message} (${data.code})`)
      break
    case 'error_notification':
      notice(data.severity, data.message)
      break
  }
}

function logEvent(event) {
  const list = $('events')
  list.append(
    h(
      'li',
      { dataset: { seq: event.seq ?? '' } },
      h('span', { class: 'seq' }, event.seq === undefined ? '~' : `#${event.seq}`),
      h('span', { class: 'type' }, event.type),
      h('span', { class: 'summary' }, summarize(event))
    )
  )
  list.scrollTop = list.scrollHeight
  $('events-count').textContent = String(list.children.length)
}

function summarize({ type, data }) {
  switch (type) {
    case 'task_update':
      return `${data.status} ${data.progress}%`
    case 'node_status':
      return `${data.nodeId} ${data.status}`
    case 'agent:tool_call':
      return `${data.tool} ${data.status}`
    case 'agent:thought':
      return clip(data.content, 40)
    case 'error_notification':
      return data.severity
    default:
      return ''
  }
}

function setTask({ status, progress, message }) {
  $('run-status').textContent = status
  $('run-status').dataset.status = status
  $('task-progress').setAttribute('aria-valuenow', String(progress))
  $('task-bar').style.width = `${progress}%`
  $('task-bar').dataset.status = status
  $('task-message').textContent = message ?? ''
  $('task-pct').textContent = `${progress} %`
}

function setNode({ nodeId, name, status, progress }) {
  let node = run.nodes.get(nodeId)
  if (node === undefined) {
    const bar = h('div', { class: 'bar' })
    const state = h('span', { class: 'node-status' })
    node = {
      el: h(
        'li',
        { class: 'node' },
        h('div', { class: 'node-head' }, h('b', {}, name ?? nodeId), state),
        h('div', { class: 'progress thin' }, bar)
      ),
      bar,
      state
    }
    run.nodes.set(nodeId, node)
    $('nodes').append(node.el)
  }
  node.el.dataset.status = status
  node.state.textContent = status
  node.bar.style.width = `${progress ?? (status === 'completed' ? 100 : 0)}%`
}

function setToolCall(data, ts) {
  let call = run.calls.get(data.callId)
  if (call === undefined) {
    const status = h('span', { class: 'pill' })
    const detail = h('div', { class: 'tool-detail' })
    call = {
      status,
      detail,
      el: h(
        'li',
        { class: 'item tool' },
        h('span', { class: 'icon', 'aria-hidden': 'true' }),
        h(
          'div',
          { class: 'body' },
          h('div', { class: 'meta' }, h('span', {}, 'Tool call ', h('code', {}, data.tool)), status, h('time', {}, time(ts))),
          data.args ? h('pre', { class: 'args' }, JSON.stringify(data.args)) : undefined,
          detail
        )
      )
    }
    run.calls.set(data.callId, call)
    $('timeline').append(call.el)
  }
  call.el.dataset.status = data.status
  call.status.textContent = data.status
  call.status.dataset.status = data.status
  if (data.status === 'succeeded') {
    const results = Array.isArray(data.output?.results) ? data.output.results : []
    call.detail.replaceChildren(
      h('span', { class: 'muted' }, `${results.length} results in ${Math.round(data.durationMs ?? 0)} ms`),
      h(
        'ul',
        {},
        results.map((r) => h('li', {}, r.title))
      )
    )
  } else if (data.status === 'failed') call.detail.replaceChildren(h('span', { class: 'error-text' }, data.error ?? 'failed'))
}

function showResult(data) {
  $('result').hidden = false
  $('result').dataset.published = String(data.output?.published === true)
  $('result-summary').textContent = data.summary ?? JSON.stringify(data.output)
  const sources = Array.isArray(data.output?.sources) ? data.output.sources : []
  $('result-sources').replaceChildren(
    ...sources.map((s) => h('li', {}, h('a', { href: s.url, target: '_blank', rel: 'noopener' }, s.title)))
  )
}

function notice(severity, message) {
  const el = h('div', { class: 'notice', dataset: { severity } }, h('b', {}, severity), h('span', {}, message))
  $('notices').append(el)
}

// The question (human in the loop): the server's request() resolves with what this handler returns.

let question

client.onRequest('hitl_request', (data) => {
  withdrawQuestion()
  return new Promise((resolve) => {
    question = { resolve }
    $('question').hidden = false
    $('question').dataset.state = 'open'
    $('question-text').textContent = data.question
    $('question-state').textContent = ''
    const options = data.options?.length ? data.options : [{ id: 'ok', label: 'OK' }]
    $('question-options').replaceChildren(
      ...options.map((option, i) =>
        h(
          'button',
          {
            type: 'button',
            class: `btn ${option.style === 'primary' || (i === 0 && !option.style) ? 'primary' : 'ghost'}`,
            dataset: { option: option.id },
            onclick: () => answer(option)
          },
          option.label
        )
      )
    )
    const timer = $('question-timer')
    timer.style.animation = 'none'
    void timer.offsetWidth // restart the countdown
    timer.style.animation = data.timeoutMs ? `countdown ${data.timeoutMs}ms linear forwards` : 'none'
  })
})

function answer(option) {
  if (question === undefined) return
  question.resolve({ optionId: option.id })
  question = undefined
  closeQuestion('answered', `You chose “${option.label}”.`)
}

/** The question is no longer pending here: someone answered it, or the run moved on. */
function settleQuestion() {
  if (question === undefined) return
  question = undefined
  closeQuestion('answered', 'Answered in another window.')
}

function withdrawQuestion(why) {
  if (question === undefined) return
  question = undefined
  closeQuestion('withdrawn', why ?? 'Replaced by a newer question.')
}

function closeQuestion(state, text) {
  $('question').dataset.state = state
  $('question-state').textContent = text
  for (const button of $('question-options').querySelectorAll('button')) button.disabled = true
  $('question-timer').style.animation = 'none'
}

// Presence: who is watching this run.

function avatar(name) {
  let hash = 0
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0
  const el = h('span', { class: 'avatar', 'aria-hidden': 'true' }, name.slice(0, 1).toUpperCase())
  el.style.setProperty('--hue', String(hash % 360))
  return el
}

function drawPeople(members, change) {
  $('people-hint').hidden = members.length > 1
  $('people-hint').textContent = 'Alone here: open the share link in another window (or with ?user=<name>).'
  $('people-count').textContent = String(members.length)
  $('people').replaceChildren(
    ...members.map((m) => {
      const name = m.info?.name ?? m.user
      return h(
        'li',
        { class: `person${change?.kind === 'join' && change.member.user === m.user ? ' joined' : ''}`, dataset: { user: m.user } },
        avatar(name),
        h('span', { class: 'name' }, name),
        m.user === me ? h('span', { class: 'tag' }, 'you') : undefined,
        m.connections > 1 ? h('span', { class: 'muted small' }, `${m.connections} tabs`) : undefined
      )
    })
  )
}

$('copy').addEventListener('click', async () => {
  try {
    await navigator.clipboard.writeText($('share-link').href)
    $('copy').textContent = 'Copied'
  } catch {
    $('copy').textContent = 'Select it'
  }
  setTimeout(() => {
    $('copy').textContent = 'Copy'
  }, 1500)
})

const initial = location.hash.slice(1)
if (/^run-[0-9a-f]{8}$/.test(initial)) openRun(initial)
