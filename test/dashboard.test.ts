// The example's dashboard in headless Chromium, as a person uses it: an AG-UI run streamed to its result, a dropped
// connection that resumes with nothing missing, and two people who see each other in a run, one of whom joins late
// and reloads the page.
import type { FastifyInstance } from 'fastify'
import type { Browser, Page } from 'playwright-core'
import t from 'tap'
import { buildApp } from '../examples/agent-stream/app.js'
import { browserUnavailable, freePort, launch } from './helpers/browser.js'

const unavailable = browserUnavailable()
if (unavailable !== undefined && process.env.REALTIME_REQUIRE_BROWSER === '1') {
  t.fail(`REALTIME_REQUIRE_BROWSER=1 but ${unavailable}`)
}
const skip = unavailable === undefined ? false : `the dashboard tests need a browser: ${unavailable}`

const ARTIFACTS = 'test/artifacts'

interface Test {
  teardown(fn: () => unknown): void
}

/** The example app on a free port, with the page's origin allowed, closed when the test ends. */
async function start(t: Test, stepMs: number): Promise<{ app: FastifyInstance; origin: string }> {
  const port = await freePort()
  const origin = `http://127.0.0.1:${port}`
  const app = await buildApp({ stepMs, origins: [origin] })
  await app.listen({ host: '127.0.0.1', port })
  t.teardown(() => app.close())
  return { app, origin }
}

let browser: Promise<Browser> | undefined
t.teardown(async () => {
  if (browser !== undefined) await (await browser).close()
})

/** The dashboard in a window of its own (its own session, so its own user), once it says "Connected". */
async function open(t: Test, origin: string, path: string): Promise<{ page: Page; problems: string[] }> {
  browser ??= launch()
  const context = await (await browser).newContext({ colorScheme: 'dark', viewport: { width: 1280, height: 900 } })
  t.teardown(() => context.close())
  const page = await context.newPage()
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(err.message))
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(msg.text())
  })
  await page.goto(`${origin}${path}`)
  await page.locator('#badge[data-state="connected"]').waitFor()
  return { page, problems }
}

/** The page's event list: `seq type` per line. */
function shown(page: Page): Promise<string[]> {
  return page.$$eval('#events li', (items) =>
    items.map((li) => `${(li as HTMLElement).dataset.seq} ${li.querySelector('.type')?.textContent}`)
  )
}

/**
 * What the thread's room holds, in the same form. `hitl_resolved` (the interrupt answered) is the client's own
 * business: it closes the question rather than reaching the page's event handler.
 */
async function emitted(app: FastifyInstance, threadId: string): Promise<string[]> {
  const res = await app.inject(`/dev/threads/${threadId}`)
  return (res.json().events as Array<{ seq: number; type: string }>)
    .filter((e) => e.type !== 'hitl_resolved')
    .map((e) => `${e.seq} ${e.type}`)
}

/** The plan's steps as the page shows them: `name status`. */
function steps(page: Page): Promise<string[]> {
  return page.$$eval('#nodes .node', (nodes) =>
    nodes.map((n) => `${n.querySelector('b')?.textContent} ${(n as HTMLElement).dataset.status}`)
  )
}

async function eventually(check: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

t.test(
  'a run streams in: thoughts word by word, tool calls with their arguments, the plan, a warning, the interrupt, and the result once approved',
  { skip },
  async (t) => {
    const { app, origin } = await start(t, 300)
    const { page, problems } = await open(t, origin, '/?user=ada')
    t.equal(await page.textContent('#fact-user'), 'ada', 'signed in with a dev token for ?user=')

    // Every text the first thought shows, as it changes.
    await page.evaluate(() => {
      const seen: string[] = []
      ;(window as unknown as { seen: string[] }).seen = seen
      new MutationObserver(() => {
        const text = document.querySelector('#timeline .thought .text')?.textContent
        if (text && text !== seen.at(-1)) seen.push(text)
      }).observe(document.getElementById('timeline') as HTMLElement, { subtree: true, childList: true, characterData: true })
    })
    await page.check('#flaky')
    await page.click('#start')
    await page.locator('.timeline .thought[data-state="done"]').first().waitFor()
    const threadId = (await page.textContent('#run-id')) as string
    t.match(threadId, /^run-[0-9a-f]{8}$/)
    t.equal(new URL(page.url()).hash, `#${threadId}`, 'the URL names the thread, to share it')
    const first = 'Reading the prompt: "What changed in Fastify 5?"'
    t.equal(await page.textContent('.timeline .thought .text'), first)
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen)
    t.ok(seen.length >= 3, `the thought grew in ${seen.length} steps, not at once`)
    t.ok(
      seen.every((text, i) => first.startsWith(text) && (i === 0 || text.length > (seen[i - 1] as string).length)),
      'each step a longer beginning of the text'
    )
    t.equal(seen.at(-1), first)

    await page.locator('.tool[data-status="failed"]').waitFor()
    t.equal(
      await page.textContent('.tool[data-status="failed"] .tool-args'),
      '{"query":"What changed in Fastify 5?","limit":3}',
      'the arguments, assembled'
    )
    t.match(await page.textContent('.tool[data-status="failed"] .tool-detail'), 'upstream timed out')
    t.match(await page.textContent('.notice[data-severity="warning"]'), /web_search failed .* retrying once/)

    await page.locator('#question[data-state="open"]').waitFor()
    t.equal(await page.textContent('#question-text'), 'Publish the summary?')
    t.equal(await page.textContent('#run-status'), 'waiting', 'the plan says it waits')
    t.equal(await page.getAttribute('#task-progress', 'aria-valuenow'), '80')
    t.same(await steps(page), ['Plan completed', 'Search completed', 'Answer running'], 'the plan, from the state deltas')
    t.same(await page.$$eval('.timeline .thought .text', (items) => items.map((p) => p.textContent)), [
      first,
      'Plan: search the web, then write a short summary.',
      'The search timed out; trying it once more.',
      'Drafted a summary; asking before publishing it.'
    ])
    await page.bringToFront()
    await page.screenshot({ path: `${ARTIFACTS}/dashboard-question.png`, animations: 'disabled' })

    await page.click('#question button[data-option="approve"]')
    t.equal(await page.getAttribute('#question', 'data-state'), 'answered')
    await page.locator('#run-status[data-status="succeeded"]').waitFor()
    t.match(await page.textContent('#result-summary'), /^Found 3 sources on "What changed in Fastify 5\?"/)
    t.equal(await page.getAttribute('#result', 'data-published'), 'true')
    t.equal(await page.getAttribute('#task-progress', 'aria-valuenow'), '100')
    t.same(await steps(page), ['Plan completed', 'Search completed', 'Answer completed'])
    t.same(await page.$$eval('.tool', (calls) => calls.map((c) => (c as HTMLElement).dataset.status)), ['failed', 'succeeded'])
    t.equal(
      await page.textContent('.tool[data-status="succeeded"] .tool-detail li'),
      'Fastify v5 release notes',
      'the result of the second call'
    )
    const list = await shown(page)
    t.same(list, await emitted(app, threadId), 'the page shows every event the run emitted, once, in order')
    for (const type of [
      'RUN_STARTED',
      'STATE_SNAPSHOT',
      'STATE_DELTA',
      'STEP_STARTED',
      'TOOL_CALL_ARGS',
      'TOOL_CALL_RESULT',
      'CUSTOM',
      'RUN_FINISHED'
    ]) {
      t.ok(
        list.some((line) => line.endsWith(` ${type}`)),
        `${type} among them`
      )
    }
    await page.screenshot({ path: `${ARTIFACTS}/dashboard-result.png`, fullPage: true, animations: 'disabled' })
    t.same(problems, [], 'no error in the page')
  }
)

t.test('a dropped connection goes to reconnecting, then recovered, and no event is missing', { skip }, async (t) => {
  // Steps of 600 ms: the interrupt comes several steps after the drop below, long after the page is back.
  const { app, origin } = await start(t, 600)
  const { page, problems } = await open(t, origin, '/?user=carol')
  await page.click('#start')
  await page.locator('#events li[data-seq="4"]').waitFor()
  const threadId = (await page.textContent('#run-id')) as string
  const firstConnection = await page.textContent('#fact-conn')

  // The reconnect asks for a token first: holding that request keeps the page away while the run goes on.
  let release = () => {}
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  let asked = () => {}
  const tokenAsked = new Promise<void>((resolve) => {
    asked = resolve
  })
  await page.route('**/dev/token?*', async (route) => {
    asked()
    await released
    await route.continue()
  })
  await page.click('#drop')
  await page.locator('#badge[data-state="reconnecting"]').waitFor()
  await tokenAsked
  const seen = (await shown(page)).length
  await eventually(async () => (await emitted(app, threadId)).length >= seen + 2, 'events emitted while the page is away')
  const missed = (await emitted(app, threadId)).length - seen
  release()

  await page.locator('#badge[data-state="recovered"]').waitFor()
  await page.unroute('**/dev/token?*')
  t.match(await page.textContent('#badge-text'), /^Recovered · resumed after #\d+$/)
  t.not(await page.textContent('#fact-conn'), firstConnection, 'on a new connection')
  t.equal(await page.textContent('#fact-reconnects'), '1')
  await page.bringToFront()
  await page.screenshot({ path: `${ARTIFACTS}/dashboard-recovered.png`, animations: 'disabled' })

  await page.locator('#question[data-state="open"]').waitFor()
  await page.click('#question button[data-option="reject"]')
  await page.locator('#run-status[data-status="succeeded"]').waitFor()
  t.equal(await page.getAttribute('#result', 'data-published'), 'false', 'rejected: not published')
  t.equal(await page.textContent('#result-summary'), 'Not published.')
  t.same(await shown(page), await emitted(app, threadId), `every event once, in order, the ${missed} emitted while away included`)
  t.same(problems, [], 'no error in the page')
})

t.test(
  'two people watching one run see each other; the one who joins late, then reloads, gets the run where it is',
  { skip },
  async (t) => {
    const { app, origin } = await start(t, 400)
    const ada = await open(t, origin, '/?user=ada')
    await ada.page.check('#flaky')
    await ada.page.click('#start')
    await ada.page.locator('.timeline .thought[data-state="done"]').first().waitFor()
    const threadId = (await ada.page.textContent('#run-id')) as string

    const grace = await open(t, origin, `/?user=grace#${threadId}`)
    const people = (page: Page) => page.$$eval('#people .person', (items) => items.map((p) => (p as HTMLElement).dataset.user).sort())
    await ada.page.locator('#people .person[data-user="grace"]').waitFor()
    await grace.page.locator('#people .person[data-user="ada"]').waitFor()
    t.same(await people(ada.page), ['ada', 'grace'])
    t.same(await people(grace.page), ['ada', 'grace'])
    t.equal(await grace.page.textContent('#people .person[data-user="grace"] .tag'), 'you')
    t.equal(await grace.page.textContent('#run-id'), threadId, 'the shared link opened the thread')
    await grace.page.locator('#events li[data-seq="1"]').waitFor()
    t.equal(
      await grace.page.textContent('.timeline .thought .text'),
      'Reading the prompt: "What changed in Fastify 5?"',
      'the late joiner has the run from its start'
    )

    await ada.page.locator('#question[data-state="open"]').waitFor()
    await grace.page.locator('#question[data-state="open"]').waitFor()
    await ada.page.bringToFront()
    await ada.page.screenshot({ path: `${ARTIFACTS}/dashboard.png`, fullPage: true, animations: 'disabled' })

    // A reload while the run waits: the history, the plan and the open interrupt come back.
    await grace.page.reload()
    await grace.page.locator('#badge[data-state="connected"]').waitFor()
    await grace.page.locator('#question[data-state="open"]').waitFor()
    t.equal(await grace.page.textContent('#question-text'), 'Publish the summary?', 'the interrupt is still open after the reload')
    t.equal(await grace.page.textContent('#run-status'), 'waiting')
    t.same(await steps(grace.page), ['Plan completed', 'Search completed', 'Answer running'], 'the plan, from the state room')
    t.same(await grace.page.$$eval('.tool', (calls) => calls.map((c) => (c as HTMLElement).dataset.status)), ['failed', 'succeeded'])
    await eventually(async () => (await shown(grace.page)).length === (await emitted(app, threadId)).length, 'the run so far')
    t.same(await shown(grace.page), await emitted(app, threadId), 'the reloaded page has the run so far')
    await ada.page.locator('#people .person[data-user="grace"]').waitFor()

    await grace.page.click('#question button[data-option="approve"]')
    await ada.page.locator('#question[data-state="answered"]').waitFor()
    t.equal(await ada.page.textContent('#question-state'), 'Answered in another window.')
    await grace.page.locator('#run-status[data-status="succeeded"]').waitFor()
    await ada.page.locator('#run-status[data-status="succeeded"]').waitFor()
    t.match(await ada.page.textContent('#result-summary'), /^Found 3 sources/)
    t.same(await shown(grace.page), await emitted(app, threadId), 'the reloaded page has the whole run')
    t.same(await shown(ada.page), await emitted(app, threadId), 'so has the first page')

    await grace.page.close()
    await ada.page.locator('#people .person[data-user="grace"]').waitFor({ state: 'detached' })
    t.same(await people(ada.page), ['ada'], 'grace left')
    t.same([...ada.problems, ...grace.problems], [], 'no error in either page')
  }
)

t.test('Cancel run stops the run on the server: RUN_ERROR cancelled, shown as cancelled, and the question goes', { skip }, async (t) => {
  const { app, origin } = await start(t, 300)
  const { page, problems } = await open(t, origin, '/?user=barbara')
  await page.click('#start')
  await page.locator('.timeline .thought').first().waitFor()
  const threadId = (await page.textContent('#run-id')) as string
  await page.locator('#cancel:not([hidden])').waitFor()
  await page.click('#cancel')
  await page.locator('#run-status[data-status="cancelled"]').waitFor()
  t.match(await page.textContent('.notice[data-severity="error"]'), /The run ended: the run was cancelled \(cancelled\)/)
  t.ok(await page.locator('#cancel').isHidden(), 'the button goes once the run ended')
  const list = await emitted(app, threadId)
  t.equal(list.at(-1)?.split(' ')[1], 'RUN_ERROR', 'the run ended with RUN_ERROR on the server')
  t.notOk(
    list.some((line) => line.endsWith(' RUN_FINISHED')),
    'and not with RUN_FINISHED'
  )
  t.same(await shown(page), list, 'the page shows every event, once, in order')
  t.same(problems, [], 'no error in the page')
})
