// The agent-stream dashboard: plain JavaScript on fastify-realtime/client, served from the package build. It starts a
// run on the AG-UI route and draws it from the AG-UI events of the thread's room.
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

// Runs: start one, or open the thread named in the URL (#run-…), e.g. from a shared link or after a reload. One run
// per thread here, named alike: `run-` and 8 hex digits.

const THREAD = /^run-[0-9a-f]{8}$/

/** The thread on screen: its subscriptions and what has been drawn of it. */
let run

$('start-form').addEventListener('submit', (ev) => {
  ev.preventDefault()
  const threadId = `run-${crypto.getRandomValues(new Uint32Array(1))[0].toString(16).padStart(8, '0')}`
  history.replaceState(null, '', `#${threadId}`)
  // Subscribed first, so the page misses nothing of the run: it starts once the room answers.
  openRun(threadId, { prompt: $('prompt').value.trim(), flaky: $('flaky').checked })
})

window.addEventListener('hashchange', () => {
  const threadId = location.hash.slice(1)
  if (THREAD.test(threadId) && threadId !== run?.id) openRun(threadId)
})

/**
 * Starts the run: a RunAgentInput POSTed to the AG-UI route. Its answer is the run's event stream, which this page
 * does not read: the same events come over the WebSocket, resumed across reconnects. Leaving it does not cancel the run.
 */
async function startRun(threadId, { prompt, flaky }) {
  $('start').disabled = true
  try {
    const input = {
      threadId,
      runId: threadId,
      messages: [{ id: crypto.randomUUID(), role: 'user', content: prompt || 'What changed in Fastify 5?' }],
      state: {},
      tools: [],
      context: [],
      forwardedProps: { flaky }
    }
    const res = await fetch('/agent', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token ?? (await fetchToken())}`,
        'content-type': 'application/json',
        accept: 'text/event-stream'
      },
      body: JSON.stringify(input)
    })
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.json().catch(() => ({}))).message ?? res.statusText}`)
    await res.body?.cancel()
  } catch (err) {
    notice('error', `The run did not start: ${err.message}`)
  } finally {
    $('start').disabled = client.state === 'closed'
  }
}

/** Follows a thread: its events in `agui:<threadId>` (with presence), its plan in the state room `agui-state:<threadId>`. */
function openRun(threadId, start) {
  run?.sub.unsubscribe()
  run?.plan.unsubscribe()
  const room = `agui:${threadId}`
  run = {
    id: threadId,
    room,
    start,
    sub: undefined,
    plan: undefined,
    messages: new Map(),
    /** The text so far of messages whose TEXT_MESSAGE_START has not been replayed yet (a page arriving mid-message). */
    early: new Map(),
    calls: new Map(),
    planValue: undefined,
    started: false,
    final: undefined,
    thoughts: 0,
    seqs: new Set(),
    subscribed: false,
    replaying: false
  }
  const current = run
  resetRun(threadId, room)
  const options = {
    onSubscribed: (info) => current === run && onSubscribed(info, subscribe),
    onPresence: (members, change) => current === run && drawPeople(members, change),
    onError: (err) => current === run && notice('error', `${room}: ${err.code}: ${err.message}`)
  }
  // Subscribing again from seq 0 (with the room's epoch) replaces the subscription: the history replays the run.
  const subscribe = (from) => {
    current.sub = client.subscribe(room, (event) => current === run && onEvent(event), { ...options, ...from })
  }
  subscribe({})
  current.plan = client.liveState(`agui-state:${threadId}`, (value) => current === run && drawPlan(value))
}

function resetRun(threadId, room) {
  $('empty').hidden = true
  $('run').hidden = false
  $('run-id').textContent = threadId
  const link = `${location.origin}/#${threadId}`
  $('share-link').href = link
  $('share-link').textContent = link
  $('fact-room').textContent = room
  $('fact-seq').textContent = '—'
  for (const id of ['timeline', 'events', 'nodes', 'notices', 'result-sources']) $(id).replaceChildren()
  $('result').hidden = true
  $('question').hidden = true
  $('cancel').hidden = true
  $('events-count').textContent = ''
  if (run !== undefined) {
    run.messages.clear()
    run.early.clear()
    run.calls.clear()
    run.seqs.clear()
    run.thoughts = 0
    run.started = false
    run.final = undefined
  }
  setProgress(0, 'Waiting for the first event…')
  if (run?.planValue !== undefined) drawPlan(run.planValue)
  else refreshStatus()
  question = undefined
  drawQuestion(client.questions())
}

/**
 * `subscribed`: the first time, and after each reconnect. A page that arrives while the thread has events (a shared
 * link, a reload, a reconnect the history could not resume) redraws it from its history: it subscribes again from
 * seq 0 with the room's epoch, and the server replays every event, then the live ones, with no gap.
 */
function onSubscribed({ recovered, seq, epoch }, subscribe) {
  const first = !run.subscribed
  run.subscribed = true
  if (!recovered) {
    resetRun(run.id, run.room)
    if (seq > 0 && !run.replaying) {
      run.replaying = true
      subscribe({ since: 0, epoch })
      return
    }
    if (seq > 0) notice('warning', 'The server no longer holds the whole run (its history expired); new events still arrive.')
  }
  const replayed = run.replaying
  run.replaying = false
  if (run.start !== undefined) {
    const start = run.start
    run.start = undefined
    startRun(run.id, start)
  }
  if (resuming || (!first && !replayed)) {
    resuming = false
    if (recovered && !replayed) badge('recovered', `Recovered · resumed after #${seq}`)
    else badge('resynced', 'Reconnected · redrawn')
  }
}

// AG-UI events, as the room `agui:<threadId>` carries them: `{ type, data }`, with a `seq` once they are whole.

function onEvent(event) {
  const { data } = event
  // A text message still streaming: the text so far, again and again (a page that arrives mid-message starts from it).
  if (event.partial) {
    if (event.type !== 'TEXT_MESSAGE_CONTENT') return
    if (run.messages.has(data.messageId)) drawText(data.messageId, data.delta, false)
    else run.early.set(data.messageId, data.delta)
    return
  }
  if (event.seq !== undefined) {
    if (run.seqs.has(event.seq)) return
    run.seqs.add(event.seq)
    $('fact-seq').textContent = String(event.seq)
  }
  logEvent(event)
  switch (event.type) {
    case 'RUN_STARTED':
      run.started = true
      refreshStatus()
      $('cancel').hidden = false
      break
    case 'TEXT_MESSAGE_START':
      drawText(data.messageId, run.early.get(data.messageId) ?? '', false, event.ts)
      run.early.delete(data.messageId)
      break
    case 'TEXT_MESSAGE_CONTENT':
      drawText(data.messageId, data.delta, false)
      break
    case 'TEXT_MESSAGE_END':
      drawText(data.messageId, undefined, true)
      break
    case 'TOOL_CALL_START':
      drawToolCall(data.toolCallId, { name: data.toolCallName, ts: event.ts })
      break
    case 'TOOL_CALL_ARGS':
      drawToolCall(data.toolCallId, { args: data.delta })
      break
    case 'TOOL_CALL_END':
      drawToolCall(data.toolCallId, { status: 'running' })
      break
    case 'TOOL_CALL_RESULT':
      drawToolCall(data.toolCallId, { result: data.content })
      break
    case 'STEP_STARTED':
    case 'STEP_FINISHED':
      $('timeline').append(
        h(
          'li',
          { class: 'item step', dataset: { step: data.stepName } },
          h('span', { class: 'muted small' }, `${data.stepName} ${event.type === 'STEP_STARTED' ? 'started' : 'finished'}`)
        )
      )
      break
    case 'CUSTOM':
      if (data.name === 'notice') notice(data.value.severity, data.value.message)
      break
    case 'RUN_FINISHED':
      endRun('succeeded')
      showResult(data.result)
      break
    case 'RUN_ERROR':
      endRun(data.code === 'cancelled' ? 'cancelled' : 'failed')
      notice('error', `The run ended: ${data.message}${data.code ? ` (${data.code})` : ''}`)
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
    case 'TEXT_MESSAGE_CONTENT':
    case 'TOOL_CALL_ARGS':
      return clip(data.delta, 40)
    case 'TOOL_CALL_START':
      return data.toolCallName
    case 'STEP_STARTED':
    case 'STEP_FINISHED':
      return data.stepName
    case 'STATE_DELTA':
      return `${data.delta.length} ops`
    case 'CUSTOM':
      return data.name
    case 'RUN_ERROR':
      return data.code ?? ''
    default:
      return ''
  }
}

function setStatus(status) {
  $('run-status').textContent = status
  $('run-status').dataset.status = status
  $('task-bar').dataset.status = status
}

function setProgress(progress, message) {
  $('task-progress').setAttribute('aria-valuenow', String(progress))
  $('task-bar').style.width = `${progress}%`
  $('task-message').textContent = message ?? ''
  $('task-pct').textContent = `${progress} %`
}

/** The run's status: how it ended, else what its plan says (running, or waiting for an answer), else queued. */
function refreshStatus() {
  const planned = run?.planValue?.status
  if (run?.final !== undefined) setStatus(run.final)
  else if (run?.started && (planned === 'running' || planned === 'waiting')) setStatus(planned)
  else setStatus(run?.started ? 'running' : 'queued')
}

function endRun(status) {
  run.final = status
  refreshStatus()
  $('cancel').hidden = true
}

/** The plan, from the state room: the value whole on subscribing, then after each patch. */
function drawPlan(plan) {
  if (plan === undefined) return
  run.planValue = plan
  setProgress(plan.progress ?? 0, plan.message)
  refreshStatus()
  $('nodes').replaceChildren(
    ...(plan.steps ?? []).map((step) => {
      const progress = step.status === 'completed' ? 100 : 0
      const bar = h('div', { class: 'bar' })
      bar.style.width = `${progress}%`
      return h(
        'li',
        { class: 'node', dataset: { status: step.status, step: step.id } },
        h('div', { class: 'node-head' }, h('b', {}, step.name), h('span', { class: 'node-status' }, step.status)),
        h('div', { class: 'progress thin' }, bar)
      )
    })
  )
}

/** A thought: an assistant text message, drawn as its text grows. `text` undefined keeps the text; `done` ends it. */
function drawText(messageId, text, done, ts) {
  let message = run.messages.get(messageId)
  if (message === undefined) {
    run.thoughts++
    const p = h('p', { class: 'text' })
    message = {
      p,
      el: h(
        'li',
        { class: 'item thought', dataset: { messageId, state: 'streaming' } },
        h('span', { class: 'icon', 'aria-hidden': 'true' }),
        h('div', { class: 'body' }, h('div', { class: 'meta' }, `Thought ${run.thoughts}`, h('time', {}, time(ts))), p)
      )
    }
    run.messages.set(messageId, message)
    $('timeline').append(message.el)
  }
  if (text !== undefined && (done || message.el.dataset.state === 'streaming')) message.p.textContent = text
  if (done) message.el.dataset.state = 'done'
}

/** A tool call: its arguments as they grow, then its result (an `error` in it marks the call failed). */
function drawToolCall(toolCallId, { name, ts, args, status, result }) {
  let call = run.calls.get(toolCallId)
  if (call === undefined) {
    const pill = h('span', { class: 'pill' })
    const argsEl = h('pre', { class: 'args tool-args' })
    const detail = h('div', { class: 'tool-detail' })
    call = {
      pill,
      argsEl,
      detail,
      el: h(
        'li',
        { class: 'item tool' },
        h('span', { class: 'icon', 'aria-hidden': 'true' }),
        h(
          'div',
          { class: 'body' },
          h('div', { class: 'meta' }, h('span', {}, 'Tool call ', h('code', {}, name ?? 'tool')), pill, h('time', {}, time(ts))),
          argsEl,
          detail
        )
      )
    }
    run.calls.set(toolCallId, call)
    $('timeline').append(call.el)
    status = 'pending'
  }
  if (args !== undefined) call.argsEl.textContent += args
  if (result !== undefined) {
    let output
    try {
      output = JSON.parse(result)
    } catch {
      output = { text: result }
    }
    if (output?.error !== undefined) {
      status = 'failed'
      call.detail.replaceChildren(h('span', { class: 'error-text' }, String(output.error)))
    } else {
      status = 'succeeded'
      const results = Array.isArray(output?.results) ? output.results : []
      call.detail.replaceChildren(
        h('span', { class: 'muted' }, `${results.length} results`),
        h(
          'ul',
          {},
          results.map((r) => h('li', {}, r.title))
        )
      )
    }
  }
  if (status !== undefined) {
    call.el.dataset.status = status
    call.pill.textContent = status
    call.pill.dataset.status = status
  }
}

function showResult(result) {
  if (result === undefined) return
  $('result').hidden = false
  $('result').dataset.published = String(result.published === true)
  $('result-summary').textContent = result.summary ?? JSON.stringify(result)
  const sources = Array.isArray(result.sources) ? result.sources : []
  $('result-sources').replaceChildren(
    ...sources.map((s) => h('li', {}, h('a', { href: s.url, target: '_blank', rel: 'noopener' }, s.title)))
  )
}

function notice(severity, message) {
  const el = h('div', { class: 'notice', dataset: { severity } }, h('b', {}, severity), h('span', {}, message))
  $('notices').append(el)
}

$('cancel').addEventListener('click', async () => {
  if (run === undefined) return
  $('cancel').disabled = true
  try {
    await client.cancel(run.room, run.id)
  } catch (err) {
    notice('error', `Could not cancel the run: ${err.message}`)
  } finally {
    $('cancel').disabled = false
  }
})

// The interrupt (human in the loop): a question of the thread's room, listed by the client with the room's other open
// questions, after every (re)subscribe too. The first answer from any window wins; the others see it close.

/** The interrupt on screen: `{ id, answered }`. */
let question

client.onQuestions((open) => {
  if (run !== undefined) drawQuestion(open)
})

function drawQuestion(open) {
  const q = open.find((item) => item.room === run?.room && item.type === 'CUSTOM' && item.data?.name === 'interrupt')
  if (q === undefined) {
    if (question !== undefined && $('question').dataset.state === 'open') {
      const expired = question.expiresAt !== undefined && Date.parse(question.expiresAt) <= Date.now()
      closeQuestion(expired ? 'withdrawn' : 'answered', expired ? 'No answer in time.' : 'Answered in another window.')
    }
    question = undefined
    return
  }
  if (question?.id === q.id) return
  const interrupt = q.data.value
  question = { id: q.id, expiresAt: interrupt.expiresAt }
  $('question').hidden = false
  $('question').dataset.state = 'open'
  $('question-text').textContent = interrupt.message ?? interrupt.reason
  $('question-state').textContent = ''
  const options = interrupt.metadata?.options?.length ? interrupt.metadata.options : [{ id: 'approve', label: 'OK' }]
  $('question-options').replaceChildren(
    ...options.map((option, i) =>
      h(
        'button',
        {
          type: 'button',
          class: `btn ${option.style === 'primary' || (i === 0 && !option.style) ? 'primary' : 'ghost'}`,
          dataset: { option: option.id },
          onclick: () => answer(q.id, option)
        },
        option.label
      )
    )
  )
  const timer = $('question-timer')
  timer.style.animation = 'none'
  void timer.offsetWidth // restart the countdown
  const left = interrupt.expiresAt ? Date.parse(interrupt.expiresAt) - Date.now() : 0
  timer.style.animation = left > 0 ? `countdown ${left}ms linear forwards` : 'none'
}

async function answer(id, option) {
  if (question?.id !== id) return
  closeQuestion('answered', `You chose “${option.label}”.`)
  try {
    await client.reply(id, { status: 'resolved', payload: { approved: option.id === 'approve' } })
  } catch (err) {
    $('question-state').textContent = err.code === 'already_answered' ? 'Answered in another window first.' : `Not sent: ${err.message}`
  }
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
if (THREAD.test(initial)) openRun(initial)
