import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import type { FastifyInstance } from 'fastify'

/** The page's own files: no framework, no CDN. */
const files = {
  '/': { url: new URL('./public/index.html', import.meta.url), type: 'text/html; charset=utf-8' },
  '/dashboard.css': { url: new URL('./public/dashboard.css', import.meta.url), type: 'text/css; charset=utf-8' },
  '/dashboard.js': { url: new URL('./public/dashboard.js', import.meta.url), type: 'text/javascript; charset=utf-8' }
} as const

/**
 * `fastify-realtime/client` bundled from the sources at start, as the package build would (ESM, one file): a few
 * tens of milliseconds, where the full build with declarations takes half a minute before the page could answer.
 */
async function clientBundle(): Promise<Record<string, { body: Buffer; type: string }>> {
  const { outputFiles } = await build({
    entryPoints: [fileURLToPath(new URL('../../src/client/index.ts', import.meta.url))],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    sourcemap: 'linked',
    outfile: 'client.js',
    write: false
  })
  const served: Record<string, { body: Buffer; type: string }> = {}
  for (const file of outputFiles) {
    const map = file.path.endsWith('.map')
    served[map ? '/client.js.map' : '/client.js'] = {
      body: Buffer.from(file.contents),
      type: map ? 'application/json; charset=utf-8' : 'text/javascript; charset=utf-8'
    }
  }
  return served
}

/** Everything the page loads comes from this server; the WebSocket is on the same host ('self'). */
const CSP = [
  "default-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

/** Serves the dashboard at `/`. The files are read (and the client bundled) once, here, so a failure stops the start. */
export async function registerDashboard(app: FastifyInstance): Promise<void> {
  const served = await clientBundle()
  for (const [path, { url, type }] of Object.entries(files)) served[path] = { body: await readFile(url), type }
  for (const [path, { body, type }] of Object.entries(served)) {
    app.get(path, async (_request, reply) =>
      reply.type(type).header('content-security-policy', CSP).header('cache-control', 'no-cache').send(body)
    )
  }
}
