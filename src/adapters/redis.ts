import { createHash, randomBytes } from 'node:crypto'
import type { Redis, RedisOptions } from 'ioredis'
import { FST_REALTIME_INVALID_OPTION } from '../errors.js'
import type {
  Adapter,
  AdapterHandler,
  AdapterLog,
  HistoryPolicy,
  HistoryResult,
  PresenceChange,
  PresenceMember,
  Publication,
  StateChanges,
  StreamPosition
} from './adapter.js'
import { loadIoredis } from './ioredis.js'
import { ttlTimer } from './ttl-timer.js'

export interface RedisAdapterOptions {
  /** Where Redis is, e.g. `redis://127.0.0.1:6379`. Default `REDIS_URL`, else `redis://127.0.0.1:6379`. */
  url?: string
  /**
   * An ioredis client of the application's, used for commands; the adapter opens one more connection for
   * pub/sub with `client.duplicate()`. The adapter never closes a client it was given.
   */
  client?: Redis
  /** Prefix of every key and channel, so several apps can share one Redis. Default `realtime:`. */
  keyPrefix?: string
  /** Milliseconds `init` waits for Redis before registration fails. Default 10 000. */
  connectTimeout?: number
  /**
   * Milliseconds a command may take before it fails (Redis paused or overloaded). Default 5 000. A publish that
   * times out rejects its `emit()`, though Redis may still carry it out later.
   */
  commandTimeout?: number
  /**
   * Milliseconds between two liveness checks of the adapter's own connections. Default 5 000; 0 turns them off. A
   * connection that goes silent (a network path that drops packets, a NAT or load balancer that forgot it) reports
   * no error and no close: one that does not answer a `PING` within `commandTimeout`, or is still not ready at the
   * next check, is dropped and opened again, and the hub then re-reads the history of every room it holds. A client
   * given in `client` is not checked (its owner decides); the pub/sub connection made from it is.
   */
  pingInterval?: number
}

/*
 * Keys, per room (the room name in braces, so a room's keys share a Redis Cluster slot):
 *   <prefix>{room}:meta     hash: epoch, seq             expires ttl after the last publish, kept alive while held
 *   <prefix>{room}:stream   stream of the last `size` events, id `<seq>-0`, fields t (ms) and f (the frame)
 *   <prefix>{room}:pz       sorted set: connection id → expiry (ms)
 *   <prefix>{room}:ph       hash: connection id → {"u": user, "i": info}
 *   <prefix>{room}:state    hash: the room's shared state (open streams, pending questions), kept ttl after a write
 *   <prefix>{room}:doc      hash: a state room's document: e (epoch), v (version), j (the value), kept ttl after a change
 * Channel: <prefix>ch:<room>, message `<epoch> <seq> <frame>` (epoch empty and seq 0 for a volatile event).
 */

/** Creates the room's state with a new epoch when it has none (or it expired). Shared by the scripts below. */
const ENSURE = `
local function ensure(meta, stream, candidate, ttl)
  local epoch = redis.call('HGET', meta, 'epoch')
  if epoch then return epoch end
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'epoch', candidate, 'seq', 0)
  redis.call('PEXPIRE', meta, ttl)
  return candidate
end
`

/**
 * Stamps a non-volatile event with the room's next seq, keeps it in the history and publishes it as
 * `<epoch> <seq><mark> <frame>` (mark '!' for an immediate event, else ''). Shared by PUBLISH and DOCUMENT_COMMIT.
 */
const STAMP = `${ENSURE}
local function stamp(meta, stream, channel, candidate, head, tail, size, ttl, now, mark)
  local epoch = ensure(meta, stream, candidate, ttl)
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  local frame = head .. seq .. tail
  if tonumber(size) > 0 then
    redis.call('XADD', stream, 'MAXLEN', size, seq .. '-0', 't', now, 'f', frame)
    redis.call('PEXPIRE', stream, ttl)
  end
  redis.call('PEXPIRE', meta, ttl)
  redis.call('PUBLISH', channel, epoch .. ' ' .. seq .. mark .. ' ' .. frame)
  return {seq, epoch}
end
`

/** KEYS meta, stream; ARGV channel, epoch candidate, volatile, head or frame, tail, size, ttl, now, mark. */
const PUBLISH = `${STAMP}
if ARGV[3] == '1' then
  redis.call('PUBLISH', ARGV[1], ' 0' .. ARGV[9] .. ' ' .. ARGV[4])
  local epoch = redis.call('HGET', KEYS[1], 'epoch')
  if not epoch then return {0, ''} end
  return {tonumber(redis.call('HGET', KEYS[1], 'seq')), epoch}
end
return stamp(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
`

/**
 * KEYS meta, stream, doc; ARGV channel, epoch candidate, head, tail, size, ttl, now, mark, base epoch ('' for none),
 * base version, next epoch, next version, value, document ttl. Returns {-1} when the document is not the base.
 */
const DOCUMENT_COMMIT = `${STAMP}
local held = redis.call('HMGET', KEYS[3], 'e', 'v')
if ARGV[9] == '' then
  if held[1] then return {-1, ''} end
elseif held[1] ~= ARGV[9] or held[2] ~= ARGV[10] then
  return {-1, ''}
end
redis.call('HSET', KEYS[3], 'e', ARGV[11], 'v', ARGV[12], 'j', ARGV[13])
redis.call('PEXPIRE', KEYS[3], ARGV[14])
return stamp(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8])
`

/** KEYS meta, stream; ARGV epoch candidate, since ('' for none), epoch ('' for none), ttl, now. */
const HISTORY = `${ENSURE}
local epoch = ensure(KEYS[1], KEYS[2], ARGV[1], ARGV[4])
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq'))
if ARGV[2] == '' or ARGV[3] ~= epoch then return {seq, epoch} end
local since = tonumber(ARGV[2])
if since > seq then return {seq, epoch} end
if since == seq then return {seq, epoch, {}} end
local entries = redis.call('XRANGE', KEYS[2], (since + 1) .. '-0', '+')
local first = entries[1]
if not first then return {seq, epoch} end
if tonumber(string.match(first[1], '^(%d+)')) ~= since + 1 then return {seq, epoch} end
if tonumber(first[2][2]) <= tonumber(ARGV[5]) - tonumber(ARGV[4]) then return {seq, epoch} end
local frames = {}
for i, entry in ipairs(entries) do frames[i] = entry[2][4] end
return {seq, epoch, frames}
`

/** Counts a user's live connections in a room. Shared by the presence scripts. */
const COUNT = `
local function count(z, h, user, now)
  local n = 0
  local all = redis.call('HGETALL', h)
  for i = 1, #all, 2 do
    local score = redis.call('ZSCORE', z, all[i])
    if score and tonumber(score) > now and cjson.decode(all[i + 1]).u == user then n = n + 1 end
  end
  return n
end
`

/** KEYS pz, ph; ARGV connection id, value, user, now, ttl. Returns the user's live connections after the add. */
const PRESENCE_ADD = `${COUNT}
local now = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[5]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
-- The keys outlive their entries, so an expired entry is still found and its user's leave told.
redis.call('PEXPIRE', KEYS[1], 3 * tonumber(ARGV[5]))
redis.call('PEXPIRE', KEYS[2], 3 * tonumber(ARGV[5]))
return count(KEYS[1], KEYS[2], ARGV[3], now)
`

/** KEYS pz, ph; ARGV connection id, now. Returns {user, live connections left}, or nothing when it was not there. */
const PRESENCE_REMOVE = `${COUNT}
local value = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if not value then return nil end
local user = cjson.decode(value).u
return {user, count(KEYS[1], KEYS[2], user, tonumber(ARGV[2]))}
`

/** KEYS pz, ph; ARGV now, ttl, connection ids... Refreshes them, removes expired entries; returns users who left. */
const PRESENCE_REFRESH = `${COUNT}
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i]) end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
local users = {}
for _, id in ipairs(expired) do
  local value = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  if value then users[cjson.decode(value).u] = true end
end
if redis.call('ZCARD', KEYS[1]) > 0 then
  redis.call('PEXPIRE', KEYS[1], 3 * ttl)
  redis.call('PEXPIRE', KEYS[2], 3 * ttl)
end
local left = {}
for user in pairs(users) do
  if count(KEYS[1], KEYS[2], user, now) == 0 then left[#left + 1] = user end
end
return left
`

/** KEYS pz, ph; ARGV now. The values of live entries. */
const PRESENCE_LIST = `
local all = redis.call('HGETALL', KEYS[2])
local live = {}
for i = 1, #all, 2 do
  local score = redis.call('ZSCORE', KEYS[1], all[i])
  if score and tonumber(score) > tonumber(ARGV[1]) then live[#live + 1] = all[i + 1] end
end
return live
`

/** Applies (op, field, value) triples from ARGV[from] ('s' sets, 'd' deletes), then keeps the key at least ttl ms. */
const STATE = `
local function apply(key, from, ttl)
  for i = from, #ARGV, 3 do
    if ARGV[i] == 's' then redis.call('HSET', key, ARGV[i + 1], ARGV[i + 2]) else redis.call('HDEL', key, ARGV[i + 1]) end
  end
  if redis.call('EXISTS', key) == 1 and redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
`

/** KEYS state; ARGV ttl, triples. */
const STATE_WRITE = `${STATE}
apply(KEYS[1], 2, tonumber(ARGV[1]))
return 1
`

/** KEYS state; ARGV ttl, field, value. Returns the value the field holds afterwards. */
const STATE_CLAIM = `${STATE}
local held = redis.call('HGET', KEYS[1], ARGV[3])
if held then return held end
apply(KEYS[1], 2, tonumber(ARGV[1]))
return ARGV[4]
`

/** KEYS state; ARGV ttl, field, triples. Returns 1 when the field was there (and is now gone), else 0. */
const STATE_TAKE = `${STATE}
if redis.call('HDEL', KEYS[1], ARGV[2]) == 0 then return 0 end
apply(KEYS[1], 3, tonumber(ARGV[1]))
return 1
`

/** KEYS meta...; ARGV ttl... Keeps held rooms alive. */
const KEEPALIVE = `
for i, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[i]) end
return #KEYS
`

interface Script {
  readonly source: string
  readonly sha: string
}

const script = (source: string): Script => ({ source, sha: createHash('sha1').update(source).digest('hex') })
const SCRIPTS = {
  publish: script(PUBLISH),
  history: script(HISTORY),
  presenceAdd: script(PRESENCE_ADD),
  presenceRemove: script(PRESENCE_REMOVE),
  presenceRefresh: script(PRESENCE_REFRESH),
  presenceList: script(PRESENCE_LIST),
  stateWrite: script(STATE_WRITE),
  stateClaim: script(STATE_CLAIM),
  stateTake: script(STATE_TAKE),
  documentCommit: script(DOCUMENT_COMMIT),
  keepalive: script(KEEPALIVE)
}

const SPACE = 0x20
/** `!` after the seq marks an immediate event. */
const MARK = 0x21

/** State changes as the scripts read them: (op, field, value) triples. */
const triples = (changes: StateChanges): string[] =>
  Object.entries(changes).flatMap(([field, value]) => (value === null ? ['d', field, ''] : ['s', field, value]))

/** Waits for a client's `ready`, or fails after `ms` with a message that says where Redis was looked for. */
function ready(client: Redis, ms: number, where: string): Promise<void> {
  if (client.status === 'ready') return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady)
      reject(new Error(`could not reach Redis at ${where} within ${ms} ms`))
    }, ms)
    const onReady = (): void => {
      clearTimeout(timer)
      resolve()
    }
    client.once('ready', onReady)
  })
}

/** Hides the password of a Redis URL, for error messages and logs. */
function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@')
}

/**
 * Several instances on one Redis: pub/sub carries each event to the instances that hold its room (one subscription
 * per room per instance), a Redis Stream per room keeps the history, and one Lua script per publish makes stamping,
 * storing and publishing atomic, so `seq` and `epoch` are the same on every instance. Presence entries expire unless
 * their instance's heartbeat refreshes them, so a crashed instance's connections disappear.
 *
 * When Redis is unreachable, `emit()` rejects at once with `FST_REALTIME_ADAPTER_FAILED` (nothing is queued);
 * the adapter reconnects by itself, subscribes again, and the hub re-reads the history of every room it holds.
 */
export function redisAdapter(options: RedisAdapterOptions = {}): Adapter {
  const prefix = options.keyPrefix ?? 'realtime:'
  const url = options.url ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
  const connectTimeout = options.connectTimeout ?? 10_000
  const pingInterval = options.pingInterval ?? 5_000
  if (!Number.isInteger(pingInterval) || pingInterval < 0 || pingInterval > 2 ** 31 - 1) {
    throw new FST_REALTIME_INVALID_OPTION(
      `redisAdapter option "pingInterval" must be a whole number of ms, 0 for off (got ${pingInterval})`
    )
  }
  const own: RedisOptions = {
    // Fail fast while disconnected rather than queue without bound; the hub reports it to the caller.
    enableOfflineQueue: false,
    commandTimeout: options.commandTimeout ?? 5_000,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(50 * attempt, 1_000)
  }
  // The epoch a room gets when its state is created. Sent with every publish but used only then, so it is cheap:
  // a random part per adapter (unique across instances and restarts) and a counter.
  const instance = randomBytes(6).toString('base64url')
  let epochs = 0
  const newEpoch = (): string => `${instance}${(++epochs).toString(36)}`
  const given = options.client
  let cmd: Redis | undefined
  let sub: Redis | undefined
  let handler: AdapterHandler | undefined
  let log: AdapterLog | undefined
  const held = new Map<string, HistoryPolicy>()
  let closed = false

  const meta = (room: string): string => `${prefix}{${room}}:meta`
  const stream = (room: string): string => `${prefix}{${room}}:stream`
  const pz = (room: string): string => `${prefix}{${room}}:pz`
  const ph = (room: string): string => `${prefix}{${room}}:ph`
  const state = (room: string): string => `${prefix}{${room}}:state`
  const doc = (room: string): string => `${prefix}{${room}}:doc`
  const channel = (room: string): string => `${prefix}ch:${room}`
  const channelPrefix = Buffer.from(`${prefix}ch:`)

  /** Runs a script by its sha; with `buffers`, strings in the reply stay Buffers (frames are never decoded). */
  const run = async (s: Script, keys: string[], args: (string | number)[], buffers = false): Promise<unknown> => {
    const client = cmd as Redis
    try {
      return await client[buffers ? 'callBuffer' : 'call']('EVALSHA', [s.sha, keys.length, ...keys, ...args])
    } catch (err) {
      // A Redis that restarted has forgotten the scripts; `ready` loads them again, this covers the moment before.
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err
      return client[buffers ? 'callBuffer' : 'call']('EVAL', [s.source, keys.length, ...keys, ...args])
    }
  }

  const loadScripts = (): void => {
    for (const s of Object.values(SCRIPTS)) {
      ;(cmd as Redis).script('LOAD', s.source).catch((err: unknown) => log?.warn({ err }, 'realtime redis script load failed'))
    }
  }

  const onMessage = (ch: Buffer, message: Buffer): void => {
    const first = message.indexOf(SPACE)
    const second = message.indexOf(SPACE, first + 1)
    if (first < 0 || second < 0) return
    const room = ch.toString('utf8', channelPrefix.length)
    const epoch = message.toString('latin1', 0, first)
    const immediate = message[second - 1] === MARK
    const seq = Number(message.toString('latin1', first + 1, immediate ? second - 1 : second))
    handler?.publication({ room, seq, epoch, frame: message.subarray(second + 1), immediate })
  }

  const keepalive = (): void => {
    if (held.size === 0) return
    const rooms = [...held]
    run(
      SCRIPTS.keepalive,
      rooms.map(([room]) => meta(room)),
      rooms.map(([, policy]) => policy.ttl)
    ).catch((err: unknown) => log?.warn({ err }, 'realtime redis keepalive failed'))
  }

  const keeper = ttlTimer(keepalive)

  /**
   * The liveness check of one connection (`pingInterval`): a PING that times out, or a connection not ready at two
   * checks in a row (stuck waiting for its ready check), is taken for dead and reconnected. A connection already
   * reconnecting is left to ioredis's own backoff.
   */
  const checker = (client: Redis, name: string) => {
    let waiting = false
    let stuck = false
    const drop = (reason: string): void => {
      log?.warn({ connection: name, reason }, 'realtime redis connection silent; reconnecting')
      client.disconnect(true)
    }
    return (): void => {
      if (waiting) return
      if (client.status !== 'ready') {
        const connecting = client.status === 'connect' || client.status === 'connecting'
        if (connecting && stuck) drop(`not ready (${client.status})`)
        stuck = connecting && !stuck
        return
      }
      stuck = false
      waiting = true
      client.ping().then(
        () => {
          waiting = false
        },
        (err: Error) => {
          waiting = false
          if (!closed && client.status === 'ready') drop(err.message)
        }
      )
    }
  }
  let liveness: NodeJS.Timeout | undefined

  const member = (value: string, connections: number): PresenceMember => {
    const { u, i } = JSON.parse(value) as { u: string; i?: unknown }
    return i === undefined ? { user: u, connections } : { user: u, connections, info: i }
  }

  return {
    name: 'redis',

    async init(h, logger) {
      handler = h
      log = logger
      if (given !== undefined) {
        cmd = given
        sub = given.duplicate({ ...own, autoResubscribe: false })
      } else {
        const Client = await loadIoredis()
        cmd = new Client(url, own)
        sub = new Client(url, { ...own, autoResubscribe: false })
      }
      const where = given !== undefined ? 'the given client' : redact(url)
      // One warning per outage of each connection, not one per reconnect attempt.
      for (const client of given !== undefined ? [sub] : [cmd, sub]) {
        let warned = false
        client.on('error', (err: Error) => {
          if (!warned) log?.warn({ err: err.message }, 'realtime redis connection error')
          warned = true
        })
        client.on('ready', () => {
          warned = false
        })
      }
      // Set when the pub/sub connection closed (CLIENT KILL or a restart may end it without an error).
      let dropped = false
      sub.on('close', () => {
        dropped = true
      })
      sub.on('messageBuffer', onMessage)
      cmd.on('ready', loadScripts)
      // After a reconnect: subscribe again, then have the hub re-read what it may have missed meanwhile.
      sub.on('ready', () => {
        if (!dropped) return
        dropped = false
        const channels = [...held.keys()].map(channel)
        Promise.all(channels.map((ch) => (sub as Redis).subscribe(ch))).then(
          () => {
            log?.info({ rooms: channels.length }, 'realtime redis reconnected; rooms resubscribed')
            handler?.resync()
          },
          (err: unknown) => log?.warn({ err }, 'realtime redis resubscribe failed')
        )
      })
      try {
        await Promise.all([ready(cmd, connectTimeout, where), ready(sub, connectTimeout, where)])
      } catch (err) {
        await this.close?.()
        throw err
      }
      if (cmd.status === 'ready') loadScripts()
      if (pingInterval > 0) {
        const checks = [checker(sub, 'pub/sub'), ...(given === undefined ? [checker(cmd, 'commands')] : [])]
        liveness = setInterval(() => {
          for (const check of checks) check()
        }, pingInterval).unref()
      }
    },

    async publish(room, event, policy): Promise<StreamPosition> {
      const mark = event.immediate === true ? '!' : ''
      const args = event.volatile
        ? [channel(room), '', '1', event.frame, '', 0, policy.ttl, Date.now(), mark]
        : [channel(room), newEpoch(), '0', event.head, event.tail, policy.size, policy.ttl, Date.now(), mark]
      const [seq, epoch] = (await run(SCRIPTS.publish, [meta(room), stream(room)], args)) as [number, string]
      return { seq, epoch }
    },

    async subscribe(room, policy) {
      held.set(room, policy)
      keeper.watch(policy.ttl)
      await (sub as Redis).subscribe(channel(room))
    },

    async unsubscribe(room) {
      held.delete(room)
      await (sub as Redis).unsubscribe(channel(room))
    },

    async history(room, from, policy): Promise<HistoryResult> {
      const args = [newEpoch(), from.since ?? '', from.epoch ?? '', policy.ttl, Date.now()]
      const [seq, raw, frames] = (await run(SCRIPTS.history, [meta(room), stream(room)], args, true)) as [number, Buffer, Buffer[]?]
      const epoch = raw.toString('latin1')
      const since = from.since as number
      const events = frames?.map((frame, i): Publication => ({ room, seq: since + 1 + i, epoch, frame }))
      return { position: { seq, epoch }, events }
    },

    async presenceAdd(room, entry, ttl) {
      const value = JSON.stringify({ u: entry.userId, i: entry.info })
      const n = (await run(SCRIPTS.presenceAdd, [pz(room), ph(room)], [entry.connectionId, value, entry.userId, Date.now(), ttl])) as number
      return n === 1 ? { kind: 'join', member: member(value, 1) } : undefined
    },

    async presenceRemove(room, connectionId) {
      const left = (await run(SCRIPTS.presenceRemove, [pz(room), ph(room)], [connectionId, Date.now()])) as [string, number] | null
      if (left === null || left[1] > 0) return undefined
      return { kind: 'leave', member: { user: left[0], connections: 0 } }
    },

    async presenceRefresh(room, connectionIds, ttl) {
      const users = (await run(SCRIPTS.presenceRefresh, [pz(room), ph(room)], [Date.now(), ttl, ...connectionIds])) as string[]
      return users.map((user): PresenceChange => ({ kind: 'leave', member: { user, connections: 0 } }))
    },

    async presenceList(room) {
      const values = (await run(SCRIPTS.presenceList, [pz(room), ph(room)], [Date.now()])) as string[]
      const users = new Map<string, { value: string; connections: number }>()
      for (const value of values) {
        const { u } = JSON.parse(value) as { u: string }
        const seen = users.get(u)
        if (seen === undefined) users.set(u, { value, connections: 1 })
        else seen.connections++
      }
      return [...users.values()].map(({ value, connections }) => member(value, connections))
    },

    stateRead(room) {
      return (cmd as Redis).hgetall(state(room))
    },

    async stateWrite(room, changes, ttl) {
      await run(SCRIPTS.stateWrite, [state(room)], [ttl, ...triples(changes)])
    },

    async stateClaim(room, field, value, ttl) {
      return (await run(SCRIPTS.stateClaim, [state(room)], [ttl, 's', field, value])) as string
    },

    async stateTake(room, field, changes, ttl) {
      return (await run(SCRIPTS.stateTake, [state(room)], [ttl, field, ...triples(changes)])) === 1
    },

    async documentRead(room) {
      // The three fields are written together, so the epoch stands for all of them.
      const [epoch, version, value] = await (cmd as Redis).hmget(doc(room), 'e', 'v', 'j')
      if (epoch === null) return undefined
      return { epoch: epoch as string, version: Number(version), value: value as string }
    },

    async documentCommit(room, { base, next, event, ttl }, policy) {
      const args = [
        channel(room),
        newEpoch(),
        event.head,
        event.tail,
        policy.size,
        policy.ttl,
        Date.now(),
        event.immediate === true ? '!' : '',
        base?.epoch ?? '',
        base?.version ?? 0,
        next.epoch,
        next.version,
        next.value,
        ttl
      ]
      const [seq, epoch] = (await run(SCRIPTS.documentCommit, [meta(room), stream(room), doc(room)], args)) as [number, string]
      return seq < 0 ? undefined : { seq, epoch }
    },

    async close() {
      if (closed) return
      closed = true
      keeper.stop()
      clearInterval(liveness)
      handler = undefined
      held.clear()
      const mine = given !== undefined ? [sub] : [sub, cmd]
      await Promise.all(mine.map((client) => client?.quit().catch(() => client.disconnect())))
    }
  }
}
