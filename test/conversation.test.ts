// The conversation example as a person uses it, in headless Chromium: the server started as `npm run
// example:conversation` starts it, a sign-in that sets an HttpOnly cookie, messages acknowledged and answered by a
// streamed reply, two people in one shared conversation, a refusal, and a server that goes away and comes back.
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { assistantReply } from '../examples/conversation/assistant.js'
import { browserUnavailable, launch } from './helpers/browser.js'

const unavailable = browserUnavailable()
if (unavailable !== undefined && process.env.REALTIME_REQUIRE_BROWSER === '1') {
  t.fail(`REALTIME_REQUIRE_BROWSER=1 but ${unavailable}`)
}
const skip = unavailable === undefined ? false : `the conversation tests need a browser: ${unavailable}`

interface Server {
  child: ChildProcess
  url: string
  exit: Promise<number | null>
}

// The npm script's command, run here without npm so that the test stops the server itself and sees its exit code
// (npm would end by the signal). The test fails if the script and this command part.
const SCRIPT = 'tsx examples/conversation/server.ts'
t.equal(
  (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts['example:conversation'],
  SCRIPT,
  'npm run example:conversation runs what the tests run'
)

/** Starts the example's server as its npm script does; resolves once it printed the URL it listens on. */
async function startServer(t: Test, env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/conversation/server.ts'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let out = ''
  const url = await new Promise<string>((resolve, reject) => {
    const read = (chunk: Buffer) => {
      out += chunk.toString()
      const found = /listening on (http:\/\/\S+)/.exec(out)?.[1]
      if (found !== undefined) resolve(found)
    }
    child.stdout?.on('data', read)
    child.stderr?.on('data', read)
    void exit.then((code) => reject(new Error(`the example exited (${code}) before listening:\n${out}`)))
  })
  return { child, url, exit }
}

async function stopServer(server: Server): Promise<number | null> {
  server.child.kill('SIGTERM')
  return server.exit
}

let browser: Promise<Browser> | undefined
t.teardown(async () => {
  if (browser !== undefined) await (await browser).close()
})

/** A window of its own (its own cookies), signed in as `user` through the page's form, once it says "Connected". */
async function signIn(
  t: Test,
  base: string,
  user: string,
  path = '/'
): Promise<{ page: Page; context: BrowserContext; problems: string[] }> {
  browser ??= launch()
  const context = await (await browser).newContext({ viewport: { width: 1200, height: 800 } })
  t.teardown(() => context.close())
  const page = await context.newPage()
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(err.message))
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(msg.text())
  })
  await page.goto(`${base}${path}`)
  await page.fill('#name', user)
  await page.click('#login button[type="submit"]')
  await page.locator('#badge[data-state="open"]').waitFor()
  t.equal(await page.textContent('#me'), user, `signed in as ${user}`)
  return { page, context, problems }
}

/** Starts a conversation from the page; resolves with its id, once the page shows it and its owner is here. */
async function newConversation(page: Page, user: string): Promise<string> {
  await page.click('#new')
  await page.locator(`#conversation:not([hidden]) #people .person[data-user="${user}"]`).waitFor()
  return new URL(page.url()).hash.slice(1)
}

const messagesOf = (page: Page) =>
  page.$$eval('#messages li', (items) =>
    items.map(
      (li) => `${(li as HTMLElement).dataset.author}|${(li as HTMLElement).dataset.state}|${li.querySelector('.text')?.textContent}`
    )
  )

t.test(
  'signing in sets an HttpOnly cookie; a message is acknowledged and the assistant reply grows token by token to its text',
  { skip },
  async (t) => {
    const server = await startServer(t)
    const { page, context, problems } = await signIn(t, server.url, 'ada')
    const cookie = (await context.cookies()).find((c) => c.name === 'token')
    t.ok(cookie, 'the sign-in set the cookie "token"')
    t.equal(cookie?.httpOnly, true, 'HttpOnly')
    t.equal(cookie?.sameSite, 'Lax', 'SameSite=Lax')
    t.notMatch(await page.evaluate(() => document.cookie), /token=/, "the page's JavaScript cannot read it")

    const id = await newConversation(page, 'ada')
    t.match(id, /^[0-9a-f]{8}$/, 'the URL names the conversation')
    t.equal(await page.textContent('#title'), 'Conversation 1')
    t.equal(await page.textContent(`#conversations a[data-id="${id}"]`), 'Conversation 1', 'listed')

    // Every text the assistant's bubble shows, as it changes.
    await page.evaluate(() => {
      const seen: string[] = []
      ;(window as unknown as { seen: string[] }).seen = seen
      new MutationObserver(() => {
        const text = document.querySelector('#messages li[data-author="assistant"] .text')?.textContent
        if (text && text !== seen.at(-1)) seen.push(text)
      }).observe(document.getElementById('messages') as HTMLElement, { subtree: true, childList: true, characterData: true })
    })
    await page.fill('#text', 'Hello, who are you?')
    await page.click('#send')
    await page.locator('#messages li[data-author="ada"][data-state="sent"]').waitFor()
    t.match(await page.getAttribute('#messages li[data-author="ada"]', 'data-id'), /^[0-9a-f]{12}$/, 'acknowledged with its id')
    await page.locator('#messages li[data-author="assistant"][data-state="done"]').waitFor()
    const reply = assistantReply('Hello, who are you?')
    t.same(await messagesOf(page), ['ada|sent|Hello, who are you?', `assistant|done|${reply}`], 'the message once, then the reply whole')
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen)
    t.ok(seen.length >= 5, `the reply grew in ${seen.length} steps, not at once`)
    t.ok(
      seen.every((text, i) => reply.startsWith(text) && (i === 0 || text.length > (seen[i - 1] as string).length)),
      'each step a longer beginning of the reply'
    )

    // A reload draws the conversation again from the server.
    await page.reload()
    await page.locator('#badge[data-state="open"]').waitFor()
    await page.locator('#messages li[data-author="assistant"][data-state="done"]').waitFor()
    t.same(await messagesOf(page), ['ada|sent|Hello, who are you?', `assistant|done|${reply}`], 'the same after a reload')
    t.same(problems, [], 'no error in the page')
    t.equal(await stopServer(server), 0, 'the server stops cleanly on SIGTERM')
  }
)

t.test('two people in a shared conversation see each other, see "… is typing", and see the other leave', { skip }, async (t) => {
  const server = await startServer(t)
  const ada = await signIn(t, server.url, 'ada')
  const id = await newConversation(ada.page, 'ada')
  await ada.page.fill('#share-user', 'grace')
  await ada.page.click('#share button')
  await ada.page.locator('#share-status', { hasText: 'Shared with grace' }).waitFor()

  const grace = await signIn(t, server.url, 'grace', `/#${id}`)
  await grace.page.locator('#people .person[data-user="ada"]').waitFor()
  await ada.page.locator('#people .person[data-user="grace"]').waitFor()
  const people = (page: Page) => page.$$eval('#people .person', (items) => items.map((p) => p.textContent))
  t.same(await people(ada.page), ['ada (you)', 'grace'], 'ada sees grace')
  t.same(await people(grace.page), ['ada', 'grace (you)'], 'grace sees ada')
  t.equal(await grace.page.textContent(`#conversations a[data-id="${id}"]`), 'Conversation 1 · ada', "in grace's list, as ada's")
  t.equal(await grace.page.textContent('#owner'), 'shared by ada')

  await grace.page.fill('#text', 'Let me th')
  await ada.page.locator('#typing', { hasText: 'grace is typing…' }).waitFor()
  t.equal(await grace.page.textContent('#typing'), '', 'nobody else is typing, for grace')
  await grace.page.click('#send')
  await ada.page.locator('#messages li[data-author="grace"]', { hasText: 'Let me th' }).waitFor()
  await ada.page.locator('#typing:empty').waitFor()
  t.pass('sending ends the typing indicator')
  await ada.page.locator('#messages li[data-author="assistant"][data-state="done"]').waitFor()
  await grace.page.locator('#messages li[data-author="assistant"][data-state="done"]').waitFor()
  t.same(await messagesOf(ada.page), await messagesOf(grace.page), 'both see the same conversation')

  await grace.page.close()
  await ada.page.locator('#people .person[data-user="grace"]').waitFor({ state: 'detached' })
  t.same(await people(ada.page), ['ada (you)'], 'grace left')
  t.same([...ada.problems, ...grace.problems], [], 'no error in either page')
})

t.test("opening someone else's conversation is refused, and the page says so", { skip }, async (t) => {
  const server = await startServer(t)
  const ada = await signIn(t, server.url, 'ada')
  const id = await newConversation(ada.page, 'ada')
  await ada.page.fill('#text', 'A secret')
  await ada.page.click('#send')
  await ada.page.locator('#messages li[data-author="ada"][data-state="sent"]').waitFor()

  const mallory = await signIn(t, server.url, 'mallory', `/#${id}`)
  await mallory.page.locator('#refusal:not([hidden])').waitFor()
  t.match(await mallory.page.textContent('#refusal'), /You cannot open this conversation: .* not yours .* \(forbidden\)/)
  t.ok(await mallory.page.locator('#conversation').isHidden(), 'no conversation view')
  t.equal(await mallory.page.locator('#messages li').count(), 0, 'no message of it')
  t.equal(await mallory.page.locator('#conversations li').count(), 0, "not in mallory's list")
  t.equal(await ada.page.locator('#people .person').count(), 1, 'ada is alone in it')
})

t.test('an upgrade with no cookie is refused with HTTP 401 before it opens; a cookie from a foreign page with 403', async (t) => {
  const server = await startServer(t)
  const ws = `${server.url.replace(/^http/, 'ws')}/ws`
  const refusal = (headers: Record<string, string>) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const socket = new WebSocket(ws, 'realtime.v1', { headers })
      socket.on('open', () => reject(new Error('the socket opened')))
      socket.on('error', reject)
      socket.on('unexpected-response', (_req, res) => {
        let body = ''
        res.on('data', (c: Buffer) => {
          body += c.toString()
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
      })
    })
  const none = await refusal({})
  t.equal(none.status, 401)
  t.match(JSON.parse(none.body), { statusCode: 401 }, 'the reason, as JSON')

  const login = await fetch(`${server.url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'ada' })
  })
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] as string
  t.match(cookie, /^token=ey/)
  t.equal((await refusal({ cookie, origin: 'https://elsewhere.example' })).status, 403, 'the cookie only works from an allowed page')
  t.equal((await fetch(`${server.url}/conversations`)).status, 401, 'the HTTP routes want it too')
})

t.test(
  'with the server gone the page tries 5 times, then says it gave up; Reconnect works once the server is back',
  { skip },
  async (t) => {
    // The same secret after the restart, so the cookie is still good; the port is the same too.
    const env = { JWT_SECRET: 'the-same-secret-across-the-restart' }
    let server = await startServer(t, env)
    const port = new URL(server.url).port
    const { page } = await signIn(t, server.url, 'ada', '/?retryDelay=100')
    let sockets = 0
    page.on('websocket', () => {
      sockets++
    })
    t.equal(await stopServer(server), 0, 'the server stopped')
    await page.locator('#gave-up:not([hidden])').waitFor()
    t.equal(sockets, 5, 'five attempts')
    t.match(await page.textContent('#gave-up-text'), /^Lost the connection to the server: gave up after 5 attempts/)
    t.equal(await page.getAttribute('#badge', 'data-state'), 'closed')
    t.equal(await page.textContent('#badge-text'), 'Disconnected')

    server = await startServer(t, { ...env, PORT: port })
    await page.click('#reconnect')
    await page.locator('#badge[data-state="open"]').waitFor()
    t.ok(await page.locator('#gave-up').isHidden(), 'the message goes')
    t.equal(sockets, 6, 'one more socket, the one that connected')
    const id = await newConversation(page, 'ada')
    await page.fill('#text', 'Back again')
    await page.click('#send')
    await page.locator('#messages li[data-author="assistant"][data-state="done"]').waitFor()
    t.equal(await page.textContent('#messages li[data-author="assistant"] .text'), assistantReply('Back again'), `conversation ${id} works`)
    t.equal(await stopServer(server), 0)
  }
)

t.test(
  'after a restart with another secret, Reconnect is refused and the page says so, then offers to sign in again',
  { skip },
  async (t) => {
    let server = await startServer(t, { JWT_SECRET: 'the-secret-before' })
    const port = new URL(server.url).port
    const { page } = await signIn(t, server.url, 'ada', '/?retryDelay=100')
    t.equal(await stopServer(server), 0)
    await page.locator('#gave-up:not([hidden])').waitFor()

    server = await startServer(t, { JWT_SECRET: 'the-secret-after', PORT: port })
    await page.click('#reconnect')
    await page.locator('#gave-up:not([hidden])').waitFor()
    // The upgrade is refused with 401 (the cookie's signature). The client then asks the endpoint with a plain GET to
    // learn why: same-origin, so without Origin but marked Sec-Fetch-Site, and it gets the token's answer too.
    t.match(await page.textContent('#gave-up-text'), /^The server refused the connection \(HTTP 401: .+\)\. Sign out and in again\.$/)
    t.equal(await page.getAttribute('#badge', 'data-state'), 'closed')

    await page.click('#logout')
    await page.locator('#login:not([hidden])').waitFor()
    t.pass('signing out shows the sign-in form again')
    t.equal(await stopServer(server), 0)
  }
)
