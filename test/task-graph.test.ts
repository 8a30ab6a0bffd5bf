// The task-graph example as a user runs it: `npm run example:task-graph`, then the page in headless Chromium, over
// WebSocket and with WebSocket gone (SSE), reloaded mid-run, and with the review left to time out.
import { type ChildProcess, spawn } from 'node:child_process'
import type { Browser, Page } from 'playwright-core'
import t from 'tap'
import { browserUnavailable, launch } from './helpers/browser.js'

const unavailable = browserUnavailable()
if (unavailable !== undefined && process.env.REALTIME_REQUIRE_BROWSER === '1') {
  t.fail(`REALTIME_REQUIRE_BROWSER=1 but ${unavailable}`)
}
const skip = unavailable === undefined ? false : `the task-graph tests need a browser: ${unavailable}`

interface Test {
  teardown(fn: () => unknown): void
}

/** The nodes every goal decomposes into; `risks` joins them when the review asks for it. */
const PLAN = ['scope', 'sources', 'competitors', 'pricing', 'outline', 'charts', 'review', 'write', 'assemble']

/**
 * Starts the example with its npm script, in a process group of its own (npm, its shell, tsx and the server), and
 * resolves with the URL it prints. The group is stopped when the tests end.
 */
async function startExample(): Promise<{ base: string; server: ChildProcess; out: () => string }> {
  const server = spawn('npm', ['run', 'example:task-graph'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', STEP_MS: '120' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true
  })
  let out = ''
  server.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString()
  })
  server.stderr?.on('data', (chunk: Buffer) => {
    out += chunk.toString()
  })
  const deadline = Date.now() + 60_000
  let base: string | undefined
  while (base === undefined) {
    base = /task-graph demo listening on (http:\/\/\S+)/.exec(out)?.[1]
    if (base !== undefined) break
    if (server.exitCode !== null || Date.now() > deadline) throw new Error(`the example did not start:\n${out}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { base, server, out: () => out }
}

let example: ReturnType<typeof startExample> | undefined
let browser: Promise<Browser> | undefined
t.teardown(async () => {
  if (browser !== undefined) await (await browser).close()
  if (example === undefined) return
  const { server } = await example
  const exited = new Promise((resolve) => server.once('exit', resolve))
  if (server.exitCode === null && server.pid !== undefined) process.kill(-server.pid, 'SIGTERM')
  await exited
})

/** The page in a window of its own, once connected; `noWebSocket` removes `window.WebSocket` before any script runs. */
async function open(t: Test, options: { noWebSocket?: boolean } = {}) {
  example ??= startExample()
  browser ??= launch()
  const { base } = await example
  const context = await (await browser).newContext({ viewport: { width: 1280, height: 900 } })
  t.teardown(() => context.close())
  const page = await context.newPage()
  if (options.noWebSocket) await page.addInitScript(() => Reflect.deleteProperty(window, 'WebSocket'))
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(err.message))
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(msg.text())
  })
  // Every frame the server sends over a WebSocket, as text (a frame may hold an array of envelopes).
  const frames: string[] = []
  page.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => frames.push(payload.toString())))
  await page.goto(`${base}/`)
  await page.locator('#conn[data-state="open"]').waitFor()
  return { page, problems, frames, base }
}

async function start(page: Page, answerWithinS = 30): Promise<string> {
  await page.fill('#answer-within', String(answerWithinS))
  await page.click('#start')
  await page.locator('#graph-status[data-status="planning"], #graph-status[data-status="running"]').waitFor()
  return (await page.textContent('#graph-id')) as string
}

/** The nodes as the page draws them: `id status`. */
function nodes(page: Page): Promise<string[]> {
  return page.$$eval('#nodes .node', (items) => items.map((n) => `${(n as HTMLElement).dataset.id} ${(n as HTMLElement).dataset.status}`))
}

/** The graph as the page holds it, from its "graph as this page holds it" panel. */
async function held(page: Page): Promise<unknown> {
  return JSON.parse((await page.textContent('#raw')) as string)
}

/** What the tests read of the server's graph. */
interface ServerGraph {
  nodes: Record<string, unknown>
  review?: { status: string; deadline: string }
}

/** The graph as the server holds it (`app.realtime.state(room).get()` behind a dev route). */
async function onServer(base: string, id: string): Promise<{ version: number; value: ServerGraph }> {
  const res = await fetch(`${base}/dev/graphs/${id}`)
  if (!res.ok) throw new Error(`GET /dev/graphs/${id} answered ${res.status}`)
  return (await res.json()) as { version: number; value: ServerGraph }
}

async function wire(page: Page): Promise<{ whole: number; patches: number }> {
  const [whole, patches] = await page.$$eval('#wire', ([el]) => [(el as HTMLElement).dataset.whole, (el as HTMLElement).dataset.patches])
  return { whole: Number(whole), patches: Number(patches) }
}

/** The types in the page's event log, oldest first. */
async function logged(page: Page): Promise<string[]> {
  return (await page.$$eval('#log li', (items) => items.map((li) => li.textContent ?? ''))).reverse()
}

t.test(
  'a run over WebSocket: the graph fills in and runs to done, the review is answered, the page holds what the server holds, from patches',
  { skip },
  async (t) => {
    const { page, problems, frames, base } = await open(t)
    t.equal(await page.textContent('#transport'), 'WebSocket', 'the page says it is on WebSocket')
    const id = await start(page)
    t.match(id, /^g-[0-9a-f]{8}$/)

    await page.locator('#review[data-state="open"]').waitFor()
    t.match(await page.textContent('#review-text'), /The outline is ready/)
    t.equal(await page.textContent('#graph-status'), 'waiting', 'the graph waits for the review')
    const waiting = await nodes(page)
    for (const node of ['scope', 'sources', 'competitors', 'pricing', 'outline'])
      t.ok(waiting.includes(`${node} done`), `${node} done before it`)
    t.ok(waiting.includes('review running'), 'the review node runs')
    t.ok(waiting.includes('write pending') && waiting.includes('assemble pending'), 'the nodes after it wait')
    await page.click('#review button[data-option="risks"]')
    await page.locator('#review[data-state="answered"]').waitFor()
    t.equal(await page.textContent('#review-state'), 'Answered: “Add a risks section”.')
    await page.locator('#nodes .node[data-id="risks"]').waitFor()
    t.equal(await page.textContent('#nodes .node[data-id="write"] .deps'), 'after review, risks', 'the answer changed the graph')

    await page.locator('#graph-status[data-status="done"]').waitFor()
    t.same(
      await nodes(page),
      [...PLAN, 'risks'].map((n) => `${n} done`),
      'every node done, in the order planned'
    )
    t.equal(await page.textContent('#nodes .node[data-id="pricing"] .status'), 'done · attempt 2', 'the flaky node was retried')
    const server = await onServer(base, id)
    t.same(await held(page), server.value, "the page's graph equals the server's")
    t.equal(await page.textContent('#graph-version'), `version ${server.version}`)

    const log = await logged(page)
    for (const node of [...PLAN, 'risks']) t.ok(log.includes(`node_status${node} completed 100 %`), `node_status: ${node} completed`)
    t.ok(log.includes('node_statuspricing failed 25 %'), 'node_status: pricing failed once')
    t.ok(
      log.some((line) => line.startsWith('error_notificationwarning: Collect pricing failed')),
      'the retry notice'
    )
    t.equal(log.at(-1), 'task_updatesucceeded 100 % · Done: Write a market report on vector databases')

    // What came over the socket: the graph once, whole, in `subscribed`; every change after it a patch.
    const envelopes = frames.flatMap((frame) => [JSON.parse(frame)].flat() as Array<{ type: string; room?: string; data?: any }>)
    const patches = envelopes.filter((e) => e.type === 'state_patch' && e.room === `graph:${id}`)
    const counted = await wire(page)
    // Subscribed before the graph existed, the page got even its first version as a patch (the value whole, once).
    t.equal(counted.whole, 0, 'the page never got the value whole in a subscribed')
    t.equal(patches.length, counted.patches, 'every change came as a state_patch frame')
    t.ok(patches.length >= 40, `${patches.length} patches`)
    t.equal(patches.at(-1)?.data.version, server.version, 'the last patch makes the version the server holds')
    const graphBytes = Buffer.byteLength(JSON.stringify(server.value))
    const patchBytes = patches.map((p) => Buffer.byteLength(JSON.stringify(p)))
    t.ok(
      Math.max(...patchBytes) < graphBytes / 3,
      `the largest patch frame (${Math.max(...patchBytes)} B) is a fraction of the graph (${graphBytes} B)`
    )
    const average = patchBytes.reduce((a, b) => a + b, 0) / patchBytes.length
    t.ok(average < graphBytes / 5, `a patch frame is ${Math.round(average)} B on average, against ${graphBytes} B for the graph`)
    const sent = patchBytes.reduce((a, b) => a + b, 0)
    t.ok(
      sent < (patches.length * graphBytes) / 5,
      `${sent} B of patches, against ${patches.length * graphBytes} B for the graph sent whole on every change`
    )
    const wholeGraphs = frames.filter((frame) => frame.includes('"order":['))
    t.equal(wholeGraphs.length, 1, 'only one frame carried the graph whole: its first, empty version')
    t.same(problems, [], 'no error in the page')
  }
)

t.test(
  'with WebSocket removed from the page, the client falls back to SSE by itself: the run, the review and the graph all work',
  { skip },
  async (t) => {
    const { page, problems, frames, base } = await open(t, { noWebSocket: true })
    t.equal(await page.evaluate(() => typeof (window as { WebSocket?: unknown }).WebSocket), 'undefined', 'no WebSocket in this page')
    t.equal(await page.getAttribute('#transport', 'data-transport'), 'sse')
    t.equal(await page.textContent('#transport'), 'SSE', 'the page says it is on SSE')
    const id = await start(page)
    await page.locator('#review[data-state="open"]').waitFor()
    await page.click('#review button[data-option="approve"]')
    await page.locator('#review[data-state="answered"]').waitFor()
    t.equal(await page.textContent('#review-state'), 'Answered: “Approve the outline”.', 'answered over SSE')
    await page.locator('#graph-status[data-status="done"]').waitFor()
    t.same(
      await nodes(page),
      PLAN.map((n) => `${n} done`),
      'every node done; no risks node for an approval'
    )
    const server = await onServer(base, id)
    t.same(await held(page), server.value, "the page's graph equals the server's")
    t.equal(server.value.review?.status, 'answered')
    const counted = await wire(page)
    t.equal(counted.whole, 0, 'no whole value after the first')
    t.ok(counted.patches >= 40, `${counted.patches} patches over SSE`)
    t.equal(frames.length, 0, 'not one WebSocket frame')
    t.same(problems, [], 'no error in the page')
  }
)

t.test(
  'a page reloaded mid-run gets the graph where it is (the value once), then patches, and the event log from the start',
  { skip },
  async (t) => {
    const { page, problems, base } = await open(t)
    const id = await start(page)
    await page.locator('#nodes .node[data-id="sources"][data-status="done"]').waitFor()
    await page.reload()
    await page.locator('#conn[data-state="open"]').waitFor()
    await page.locator('#nodes .node[data-id="sources"][data-status="done"]').waitFor()
    t.equal(await page.textContent('#graph-id'), id, 'the URL reopened the graph')
    t.same(
      await nodes(page).then((list) => list.slice(0, 2)),
      ['scope done', 'sources done'],
      'the nodes done before the reload are done at once'
    )
    const after = await wire(page)
    t.equal(after.whole, 1, 'the reloaded page got the graph whole once, in subscribed')

    await page.locator('#review[data-state="open"]').waitFor()
    await page.click('#review button[data-option="approve"]')
    await page.locator('#graph-status[data-status="done"]').waitFor()
    const counted = await wire(page)
    t.equal(counted.whole, 1, 'still whole only once')
    t.ok(counted.patches > after.patches, 'then patches')
    t.ok(counted.patches >= 20, `${counted.patches} patches after the reload`)
    t.same(await held(page), (await onServer(base, id)).value, "the page's graph equals the server's")
    const log = await logged(page)
    t.equal(log[0], 'task_updaterunning 0 % · Planning: Write a market report on vector databases', 'the log replayed from the first event')
    t.ok(log.includes('node_statusscope completed 100 %'), 'events from before the reload are in it')
    t.equal(log.at(-1), 'task_updatesucceeded 100 % · Done: Write a market report on vector databases')
    const seqs = await page.$$eval('#log li', (items) => items.map((li) => Number((li as HTMLElement).dataset.seq)).reverse())
    t.ok(
      seqs.every((seq, i) => i === 0 || seq > (seqs[i - 1] as number)),
      'each event once, in order'
    )
    t.same(problems, [], 'no error in the page')
  }
)

t.test('a review nobody answers times out: the planner goes on with the default, and the page says so', { skip }, async (t) => {
  const { page, problems, base } = await open(t)
  const id = await start(page, 1)
  await page.locator('#review[data-state="open"]').waitFor()
  await page.locator('#review[data-state="timeout"]').waitFor()
  t.equal(await page.textContent('#review-state'), 'Timed out: no answer in time, the planner went on with “Approve the outline”.')
  t.ok(await page.locator('#review button[data-option="approve"]').isDisabled(), 'the buttons are off')
  await page.locator('#graph-status[data-status="done"]').waitFor()
  t.same(
    await nodes(page),
    PLAN.map((n) => `${n} done`),
    'the run went on to done'
  )
  const server = await onServer(base, id)
  t.same(server.value.review, {
    requestId: `${id}-review`,
    text: 'The outline is ready. Approve it, or add a section on risks first?',
    options: [
      { id: 'approve', label: 'Approve the outline' },
      { id: 'risks', label: 'Add a risks section' }
    ],
    fallback: 'approve',
    deadline: server.value.review?.deadline,
    status: 'timeout',
    answer: 'approve'
  })
  t.same(await held(page), server.value, "the page's graph equals the server's")
  t.ok((await logged(page)).includes('error_notificationinfo: No answer in 1 s: going on with "approve"'), 'the log says why')
  t.same(problems, [], 'no error in the page')
})
