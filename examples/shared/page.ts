// What the browser examples share: where they listen (their page's origin must be known before the plugin is
// registered), how they serve their page with the package's client build, and how they shut down.
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { FastifyInstance } from 'fastify'

/** Where an example listens: `PORT` (default 3000; 0 picks a free one now) on `HOST`, and the origins of its page. */
export async function listenAddress(): Promise<{ port: number; host: string; origin: string; base: string; origins: string[] }> {
  const wanted = Number(process.env.PORT ?? 3000)
  const host = process.env.HOST ?? '127.0.0.1'
  const port =
    wanted !== 0
      ? wanted
      : await new Promise<number>((resolve, reject) => {
          const probe = createServer()
          probe.once('error', reject)
          probe.listen(0, host, () => {
            const { port } = probe.address() as { port: number }
            probe.close(() => resolve(port))
          })
        })
  const origin = host === '0.0.0.0' || host === '::' ? 'localhost' : host
  const base = `http://${origin}:${port}`
  // The page is served from here, so its origin may connect (under either local name).
  const origins = [...new Set([base, `http://localhost:${port}`, `http://127.0.0.1:${port}`])]
  return { port, host, origin, base, origins }
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  map: 'application/json; charset=utf-8'
}

/** Everything a page loads comes from its server, the WebSocket and the SSE stream too. */
const CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/**
 * Serves `index.html` at `/` and the other `files` of the example's `public/` folder, with the client from the package
 * build at `/client.js`: no framework, no CDN. The files are read once, here: a missing client build fails the start
 * with a hint rather than serving a page that cannot connect.
 */
export async function servePage(app: FastifyInstance, publicDir: URL, files: readonly string[], script: string): Promise<void> {
  const served: Array<[string, URL]> = [
    ...files.map((file): [string, URL] => [file === 'index.html' ? '/' : `/${file}`, new URL(file, publicDir)]),
    ['/client.js', new URL('../../dist/client.js', import.meta.url)],
    ['/client.js.map', new URL('../../dist/client.js.map', import.meta.url)]
  ]
  for (const [path, url] of served) {
    const body = await readFile(url).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' && url.pathname.includes('/dist/')) {
        throw new Error(`dist/client.js is missing: run \`npm run build\` first (\`npm run ${script}\` does it for you)`)
      }
      throw err
    })
    const type = TYPES[url.pathname.split('.').pop() as string] ?? 'application/octet-stream'
    app.get(path, async (_request, reply) =>
      reply.type(type).header('content-security-policy', CSP).header('cache-control', 'no-cache').send(body)
    )
  }
}

/** Closes the app on SIGINT or SIGTERM, once, then exits 0. */
export function stopOnSignals(app: FastifyInstance): void {
  let stopping = false
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return
    stopping = true
    app.log.info({ signal }, 'shutting down')
    await app.close()
    process.exit(0)
  }
  process.once('SIGINT', () => void stop('SIGINT'))
  process.once('SIGTERM', () => void stop('SIGTERM'))
}
