import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
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
