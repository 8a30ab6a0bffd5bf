import type { Redis } from 'ioredis'

type Load = () => Promise<{ Redis: typeof Redis }>

/**
 * ioredis is an optional peer dependency, loaded when the adapter first connects: an app that never uses Redis need
 * not install it, and one that forgot is told the command instead of a bare ERR_MODULE_NOT_FOUND.
 */
export async function loadIoredis(load: Load = () => import('ioredis')): Promise<typeof Redis> {
  try {
    return (await load()).Redis
  } catch (err) {
    const code = (err as { code?: unknown } | null)?.code
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw err
    throw new Error('fastify-realtime/redis needs the ioredis package, which is not installed: npm install ioredis', { cause: err })
  }
}
