// The conversation page: plain JavaScript on fastify-realtime/client, served from the package build. The JWT lives in
// an HttpOnly cookie, which the browser sends with the WebSocket upgrade: this script never sees it.
import { createClient } from '/client.js'

const $ = (id) => document.getElementById(id)
const ATTEMPTS = 5
// `?retryDelay=<ms>` shortens the waits between reconnect attempts, to watch the client give up sooner.
const retryDelay = Number(new URLSearchParams(location.search).get('retryDelay')) || undefined
const roomOf = (id) => `conv:${id}`

let me
let client
let lastError
let signingOut = false
let conversations = []
/** The conversation on screen: `{ id, subscription, typers: Map<user, timer> }`. */
let current

/** Makes an element; text is never parsed as HTML. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(props)) {
    if (key === 'dataset') Object.assign(el.dataset, value)
    else if (key === 'class') el.className = value
    else el.setAttribute(key, String(value))
  }
  el.append(...children)
  return el
}

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const json = res.status === 204 ? undefined : await res.json().catch(() => undefined)
  if (!res.ok) throw new Error(json?.message ?? `${method} ${path} answered ${res.status}`)
  return json
}

// Signing in: POST /login sets the cookie; GET /me tells whether one is already set.

async function start() {
  const { user } = await api('GET', '/me')
  if (user !== null) return enter(user)
  $('login').hidden = false
  $('name').focus()
}

$('login').addEventListener('submit', async (e) => {
  e.preventDefault()
  try {
    const { user } = await api('POST', '/login', { user: $('name').value.trim() })
    $('login').hidden = true
    await enter(user)
  } catch (err) {
    $('login-error').hidden = false
    $('login-error').textContent = err.message
  }
})

$('logout').addEventListener('click', async () => {
  signingOut = true
  client?.close()
  await api('POST', '/logout')
  location.hash = ''
  location.reload()
})

async function enter(user) {
  me = user
  $('me').textContent = user
  $('logout').hidden = false
  $('app').hidden = false
  connect()
  await loadList()
  openFromHash()
}

// The connection: five attempts after a loss, then the page says it gave up and offers to try again.

function badge(state) {
  const text = { connecting: 'Connecting…', open: 'Connected', reconnecting: 'Reconnecting…', closed: 'Disconnected' }
  $('badge').dataset.state = state
  $('badge-text').textContent = text[state]
}

function connect() {
  $('gave-up').hidden = true
  lastError = undefined
  const delays = retryDelay === undefined ? {} : { initialDelay: retryDelay, maxDelay: retryDelay }
  const mine = createClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
    transports: ['websocket'],
    reconnect: { maxAttempts: ATTEMPTS, ...delays },
    onError: (error) => {
      lastError = error
    }
  })
  client = mine
  badge(mine.state)
  mine.onStateChange((state) => {
    if (mine !== client) return
    badge(state)
    $('send').disabled = state !== 'open'
    if (state === 'closed' && !signingOut) gaveUp()
  })
  mine.on('typing', onTyping)
  if (current !== undefined) subscribe(current)
}

function gaveUp() {
  // A refusal (HTTP 401 or 403 on the upgrade) ends the attempts at once: say so rather than count them.
  $('gave-up-text').textContent =
    lastError?.kind === 'refused'
      ? `The server refused the connection (HTTP ${lastError.status}: ${lastError.reason}). Sign out and in again.`
      : `Lost the connection to the server: gave up after ${ATTEMPTS} attempts${lastError === undefined ? '' : ` (${lastError.reason})`}.`
  $('gave-up').hidden = false
}

$('reconnect').addEventListener('click', () => connect())

// The conversation list.

async function loadList() {
  ;({ conversations } = await api('GET', '/conversations'))
  $('conversations').replaceChildren(
    ...conversations.map((c) =>
      h(
        'li',
        {},
        h(
          'a',
          { href: `#${c.id}`, dataset: { id: c.id }, 'aria-current': String(c.id === current?.id) },
          c.title,
          c.owner === me ? '' : h('span', { class: 'owner' }, ` · ${c.owner}`)
        )
      )
    )
  )
  $('no-conversations').hidden = conversations.length > 0
}

$('new').addEventListener('click', async () => {
  const created = await api('POST', '/conversations', {})
  await loadList()
  location.hash = created.id
})

window.addEventListener('hashchange', () => openFromHash())

function openFromHash() {
  const id = location.hash.slice(1)
  if (/^[0-9a-f]{8}$/.test(id)) open(id)
}

// One conversation: its room's messages, the assistant's streamed replies, who is here and who is typing.

function open(id) {
  if (current?.id === id) return
  if (current !== undefined) leave(current)
  current = { id, typers: new Map() }
  const known = conversations.find((c) => c.id === id)
  $('title').textContent = known?.title ?? `Conversation ${id}`
  $('owner').textContent = known === undefined ? '' : known.owner === me ? 'yours' : `shared by ${known.owner}`
  $('share').hidden = known !== undefined && known.owner !== me
  $('share-status').textContent = ''
  $('messages').replaceChildren()
  $('people').replaceChildren()
  drawTyping()
  $('empty').hidden = true
  $('refusal').hidden = true
  $('conversation').hidden = false
  for (const a of document.querySelectorAll('#conversations a')) a.setAttribute('aria-current', String(a.dataset.id === id))
  subscribe(current)
}

function leave(conversation) {
  conversation.subscription?.unsubscribe()
  for (const timer of conversation.typers.values()) clearTimeout(timer)
}

function subscribe(conversation) {
  conversation.subscription = client.subscribe(
    roomOf(conversation.id),
    (event) => {
      if (conversation !== current) return
      if (event.type === 'message') drawMessage(event.data)
      else if (event.type === 'assistant') drawAssistant(event.data.id, event.data.text, event.partial ? 'streaming' : 'done')
    },
    {
      // A first subscribe brings the stored messages; a reconnect resumes from the last event seen instead.
      onSubscribed: ({ snapshot }) => {
        for (const m of snapshot?.messages ?? []) m.author === 'assistant' ? drawAssistant(m.id, m.text, 'done') : drawMessage(m)
      },
      onPresence: (members, change) => {
        if (conversation !== current) return
        drawPeople(members)
        if (change?.kind === 'leave') stoppedTyping(change.member.user)
      },
      onError: (err) => {
        if (conversation !== current) return
        $('conversation').hidden = true
        $('refusal').hidden = false
        $('refusal').textContent =
          err.code === 'forbidden'
            ? `You cannot open this conversation: it does not exist, or it is not yours and nobody shared it with you (${err.code}).`
            : `This conversation cannot be opened: ${err.message} (${err.code}).`
      }
    }
  )
}

const byId = (id) => document.querySelector(`#messages li[data-id="${CSS.escape(id)}"]`)

function bubble(id, author, text, state) {
  return h(
    'li',
    { class: 'msg', dataset: { id, author, state, mine: String(author === me) } },
    h('span', { class: 'author' }, author === me ? 'you' : author),
    h('p', { class: 'text' }, text)
  )
}

/** A person's message, once: the echo of one this page sent takes the place of its pending bubble. */
function drawMessage(m) {
  if (byId(m.id)) return
  const pending =
    m.author === me &&
    [...document.querySelectorAll('#messages li[data-state="sending"]:not([data-id])')].find((li) => li.textContent.endsWith(m.text))
  if (pending) pending.dataset.id = m.id
  else $('messages').append(bubble(m.id, m.author, m.text, 'sent'))
}

/** The assistant's reply: drawn once, then its text replaced as it grows. */
function drawAssistant(id, text, state) {
  const el = byId(id) ?? $('messages').appendChild(bubble(id, 'assistant', '', state))
  el.querySelector('.text').textContent = text
  el.dataset.state = state
}

function drawPeople(members) {
  $('people').replaceChildren(
    ...members.map((m) => h('li', { class: 'person', dataset: { user: m.user } }, m.user === me ? `${m.user} (you)` : m.user))
  )
}

// Sending: the bubble shows at once as "sending", and as sent when the server acknowledged it.

$('composer').addEventListener('submit', async (e) => {
  e.preventDefault()
  const text = $('text').value.trim()
  if (text === '' || current === undefined) return
  $('text').value = ''
  typing(false)
  const pending = bubble('', me, text, 'sending')
  delete pending.dataset.id
  $('messages').append(pending)
  try {
    const { id } = await client.send('message:send', { conversationId: current.id, text })
    const echoed = byId(id)
    if (echoed !== null && echoed !== pending) pending.remove()
    const el = echoed ?? pending
    el.dataset.id = id
    el.dataset.state = 'sent'
  } catch (err) {
    pending.dataset.state = 'failed'
    pending.title = `${err.code}: ${err.message}`
  }
})

$('share').addEventListener('submit', async (e) => {
  e.preventDefault()
  try {
    const { sharedWith } = await api('POST', `/conversations/${current.id}/share`, { user: $('share-user').value.trim() })
    $('share-status').textContent = `Shared with ${sharedWith.join(', ')}`
    $('share-user').value = ''
  } catch (err) {
    $('share-status').textContent = err.message
  }
})

// Typing: a volatile event each page publishes to the room itself; nothing of it is stored.

let typingSent = false
let typingTimer
function typing(on) {
  clearTimeout(typingTimer)
  if (on) typingTimer = setTimeout(() => typing(false), 2000)
  if (on === typingSent || current === undefined || client.state !== 'open') return
  typingSent = on
  client.publish(roomOf(current.id), 'typing', { typing: on }).catch(() => {})
}
$('text').addEventListener('input', () => typing($('text').value !== ''))

function onTyping(event) {
  if (current === undefined || event.room !== roomOf(current.id) || event.from === me) return
  if (!event.data.typing) return stoppedTyping(event.from)
  clearTimeout(current.typers.get(event.from))
  // A page that went away mid-word sends no "stopped": forget it after a while.
  current.typers.set(
    event.from,
    setTimeout(() => stoppedTyping(event.from), 6000)
  )
  drawTyping()
}

function stoppedTyping(user) {
  clearTimeout(current?.typers.get(user))
  current?.typers.delete(user)
  drawTyping()
}

function drawTyping() {
  const names = [...(current?.typers.keys() ?? [])]
  $('typing').textContent = names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…` : `${names.join(' and ')} are typing…`
}

start()
