// A real Redis for the tests: our own redis-server on a free port when the binary exists, else REDIS_URL.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { freePort } from './browser.js'

const binary = process.env.REDIS_SERVER ?? 'redis-server'
const hasBinary = spawnSync(binary, ['--version'], { stdio: 'ignore' }).status === 0

/** Why Redis tests cannot run here, or undefined. With REALTIME_REQUIRE_REDIS=1 they must run (and fail instead). */
export function redisUnavailable(): string | undefined {
  if (hasBinary || process.env.REDIS_URL !== undefined) return undefined
  return 'no redis-server binary (Debian package redis-server) and no REDIS_URL: Redis tests skipped'
}

/** Why tests that stop and restart Redis cannot run: they need a server of their own. */
export function ownRedisUnavailable(): string | undefined {
  return hasBinary ? undefined : 'no redis-server binary: tests that restart Redis need one of their own'
}

/** Fails the file when Redis is required but missing; returns the skip reason otherwise. */
export function requireRedis(t: Test, reason = redisUnavailable()): string | undefined {
  if (reason !== undefined && process.env.REALTIME_REQUIRE_REDIS === '1') t.fail(`REALTIME_REQUIRE_REDIS=1 but ${reason}`)
  return reason
}

export interface RedisServer {
  readonly url: string
  /** A key prefix of its own for this test: tests sharing one Redis never see each other's keys. */
  readonly prefix: string
  /** A plain client for inspecting and for CLIENT KILL/PAUSE. */
  admin(): Redis
  /** SIGKILL: Redis vanishes at once, as in a crash (only for a server of our own). Resolves once it is gone. */
  kill(): Promise<void>
  /** Starts it again on the same port, empty. */
  start(): Promise<void>
}

async function waitForPing(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {})
    try {
      await probe.connect()
      await probe.ping()
      probe.disconnect()
      return
    } catch {
      probe.disconnect()
      await delay(50)
    }
  }
  throw new Error(`redis at ${url} did not answer`)
}

/** Starts a redis-server for this test (stopped in teardown), or uses REDIS_URL; keys are cleaned up after. */
export async function startRedis(t: Test): Promise<RedisServer> {
  const prefix = `rt-test:${randomBytes(4).toString('hex')}:`
  const admins: Redis[] = []
  const admin = (url: string) => () => {
    const client = new Redis(url, { maxRetriesPerRequest: 1 })
    client.on('error', () => {})
    admins.push(client)
    return client
  }
  if (!hasBinary) {
    const url = process.env.REDIS_URL as string
    t.teardown(async () => {
      const cleaner = new Redis(url)
      const keys = await cleaner.keys(`${prefix}*`)
      if (keys.length > 0) await cleaner.del(...keys)
      cleaner.disconnect()
      for (const a of admins) a.disconnect()
    })
    return {
      url,
      prefix,
      admin: admin(url),
      kill: async () => {
        throw new Error('cannot kill a Redis this test did not start')
      },
      start: async () => {}
    }
  }
  const port = await freePort()
  const url = `redis://127.0.0.1:${port}`
  let child: ChildProcess | undefined
  const start = async (): Promise<void> => {
    child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    await waitForPing(url)
  }
  await start()
  t.teardown(() => {
    for (const a of admins) a.disconnect()
    child?.kill('SIGKILL')
  })
  return {
    url,
    prefix,
    admin: admin(url),
    kill: async () => {
      const dying = child
      child = undefined
      if (dying === undefined || dying.exitCode !== null) return
      const gone = new Promise((resolve) => dying.once('exit', resolve))
      dying.kill('SIGKILL')
      await gone
    },
    start
  }
}
