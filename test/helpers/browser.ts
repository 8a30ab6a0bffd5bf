import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { FastifyInstance } from 'fastify'
import type { Browser } from 'playwright-core'

/** Debian's Chromium; another build can be named with CHROMIUM_PATH. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/** Why browser tests cannot run here, or undefined. With REALTIME_REQUIRE_BROWSER=1 they must run. */
export function browserUnavailable(): string | undefined {
  if (existsSync(chromiumPath)) return undefined
  return `no Chromium at ${chromiumPath} (install Debian's chromium package or set CHROMIUM_PATH)`
}

export async function launch(): Promise<Browser> {
  const { chromium } = await import('playwright-core')
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update']
  })
}

/** A port that was free a moment ago: the page's origin must be known before the app is registered. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/**
 * Serves a test page from `app` on `port`: `html` at `/`, the built browser client at `/client.js` and, when given,
 * `token` at `/token`; the app closes when the test ends.
 */
export async function servePage(
  t: { teardown(fn: () => unknown): void },
  app: FastifyInstance,
  port: number,
  html: string,
  token?: string
): Promise<void> {
  const bundle = await readFile('dist/client.js', 'utf8')
  app.get('/', async (_req, reply) => reply.type('text/html').send(html))
  app.get('/client.js', async (_req, reply) => reply.type('text/javascript').send(bundle))
  if (token !== undefined) app.get('/token', async () => token)
  await app.listen({ host: '127.0.0.1', port })
  t.teardown(() => app.close())
}
