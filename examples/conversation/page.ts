import { readFile } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'

/** The page's own files, and the client from the package build: no framework, no CDN. */
const files = {
  '/': { url: new URL('./public/index.html', import.meta.url), type: 'text/html; charset=utf-8' },
  '/chat.css': { url: new URL('./public/chat.css', import.meta.url), type: 'text/css; charset=utf-8' },
  '/chat.js': { url: new URL('./public/chat.js', import.meta.url), type: 'text/javascript; charset=utf-8' },
  '/client.js': { url: new URL('../../dist/client.js', import.meta.url), type: 'text/javascript; charset=utf-8' },
  '/client.js.map': { url: new URL('../../dist/client.js.map', import.meta.url), type: 'application/json; charset=utf-8' }
} as const

/** Everything the page loads comes from this server; the WebSocket is on the same host ('self'). */
const CSP = [
  "default-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

/**
 * Serves the page at `/`. The files are read once, here: a missing client build fails the start with a hint
 * rather than serving a page that cannot connect.
 */
export async function registerPage(app: FastifyInstance): Promise<void> {
  for (const [path, { url, type }] of Object.entries(files)) {
    let body: Buffer
    try {
      body = await readFile(url)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !url.pathname.includes('/dist/')) throw err
      throw new Error('dist/client.js is missing: run `npm run build` first (`npm run example:conversation` does it for you)')
    }
    app.get(path, async (_request, reply) =>
      reply.type(type).header('content-security-policy', CSP).header('cache-control', 'no-cache').send(body)
    )
  }
}
