// The adapter contract (src/adapters/adapter.ts), as one suite every adapter must pass.
import { setTimeout as delay } from 'node:timers/promises'
import type { Test } from 'tap'
import type { Adapter, AdapterHandler, DocumentCommit, HistoryPolicy, Outgoing, Publication } from '../../src/adapters/adapter.js'

export interface ContractTarget {
  /** A fresh adapter; with `shared`, every adapter made for one test sees the same rooms (one Redis). */
  make(t: Test): Adapter
  readonly shared: boolean
}

const policy: HistoryPolicy = { size: 100, ttl: 60_000 }
const quietLog = { info() {}, warn() {} }

/** A started adapter and the publications it handed to its hub. */
async function started(t: Test, target: ContractTarget): Promise<{ adapter: Adapter; seen: Publication[]; resyncs: () => number }> {
  const adapter = target.make(t)
  const seen: Publication[] = []
  let resyncs = 0
  const handler: AdapterHandler = {
    publication: (pub) => seen.push(pub),
    resync: () => resyncs++
  }
  await adapter.init(handler, quietLog)
  t.teardown(() => adapter.close?.())
  return { adapter, seen, resyncs: () => resyncs }
}

const event = (text: string): Outgoing => ({ volatile: false, head: '{"type":"t","room":"r","seq":', tail: `,"data":"${text}"}` })
const volatile = (text: string): Outgoing => ({ volatile: true, frame: `{"type":"v","room":"r","data":"${text}"}` })

/** A commit of version `version` (value `v<version>`) on top of `version - 1`, with its event. */
const commitOf = (version: number, epoch = 'e1', ttl = 60_000): DocumentCommit => ({
  base: version === 1 ? undefined : { epoch, version: version - 1 },
  next: { epoch, version, value: `"v${version}"` },
  event: { volatile: false, head: '{"type":"state_patch","room":"d","seq":', tail: `,"data":${version}}` },
  ttl
})

async function until(check: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`)
    await delay(5)
  }
}

export function adapterContract(t: Test, target: ContractTarget): void {
  t.test('publish stamps seq 1, 2, 3 in one epoch and hands each frame, whole, to a subscribed instance', async (t) => {
    const { adapter, seen } = await started(t, target)
    await adapter.subscribe('r', policy)
    const positions = [await adapter.publish('r', event('a'), policy), await adapter.publish('r', event('b'), policy)]
    positions.push(await adapter.publish('r', event('c'), policy))
    t.same(
      positions.map((p) => p.seq),
      [1, 2, 3]
    )
    t.ok(
      positions.every((p) => p.epoch === positions[0]?.epoch && p.epoch.length > 0),
      'one non-empty epoch'
    )
    await until(() => seen.length === 3, 'three publications')
    t.same(
      seen.map((p) => [p.room, p.seq, p.epoch, p.frame.toString()]),
      ['a', 'b', 'c'].map((x, i) => ['r', i + 1, positions[0]?.epoch, `{"type":"t","room":"r","seq":${i + 1},"data":"${x}"}`])
    )
  })

  t.test('an instance receives nothing of a room before subscribe or after unsubscribe', async (t) => {
    const { adapter, seen } = await started(t, target)
    await adapter.publish('r2', event('before'), policy)
    await adapter.subscribe('r2', policy)
    await adapter.publish('r2', event('during'), policy)
    await until(() => seen.length === 1, 'one publication')
    await adapter.unsubscribe('r2')
    await adapter.publish('r2', event('after'), policy)
    await delay(50)
    t.same(
      seen.map((p) => p.seq),
      [2]
    )
  })

  t.test('history: the events after since, [] when nothing was missed, undefined for another epoch or a trimmed gap', async (t) => {
    const { adapter } = await started(t, target)
    const small = { size: 3, ttl: 60_000 }
    const empty = await adapter.history('h', {}, small)
    t.same(empty.position.seq, 0, 'a room with no event is at seq 0')
    t.equal(empty.events, undefined, 'no since, no events')
    const again = await adapter.history('h', { since: 0, epoch: empty.position.epoch }, small)
    t.same(again, { position: empty.position, events: [] }, 'the epoch of an empty room holds until its first event')
    for (const x of ['1', '2', '3', '4', '5']) await adapter.publish('h', event(x), small)
    const { epoch } = empty.position
    const tail = await adapter.history('h', { since: 2, epoch }, small)
    t.same(tail.position, { seq: 5, epoch })
    t.same(
      tail.events?.map((p) => [p.seq, p.epoch, p.frame.toString()]),
      [3, 4, 5].map((n) => [n, epoch, `{"type":"t","room":"r","seq":${n},"data":"${n}"}`])
    )
    t.same((await adapter.history('h', { since: 5, epoch }, small)).events, [], 'nothing missed')
    t.equal((await adapter.history('h', { since: 1, epoch }, small)).events, undefined, 'seq 2 was trimmed away')
    t.equal((await adapter.history('h', { since: 2, epoch: 'other' }, small)).events, undefined, 'another epoch')
    t.equal((await adapter.history('h', { since: 9, epoch }, small)).events, undefined, 'a seq from the future')
    const none = { size: 0, ttl: 60_000 }
    await adapter.publish('n', event('x'), none)
    const n = await adapter.history('n', {}, none)
    t.equal(n.position.seq, 1, 'with size 0 the seq still counts')
    t.equal((await adapter.history('n', { since: 0, epoch: n.position.epoch }, none)).events, undefined, 'but nothing is kept')
  })

  t.test('events older than the ttl leave the history; a room idle past its ttl starts a new epoch', async (t) => {
    const { adapter } = await started(t, target)
    // Margins of half a second each way: a loaded machine stretches a delay, and the ttl must still fall between them.
    const short = { size: 10, ttl: 1000 }
    const first = await adapter.publish('x', event('1'), short)
    await delay(700)
    await adapter.publish('x', event('2'), short)
    await delay(500)
    t.equal((await adapter.history('x', { since: 0, epoch: first.epoch }, short)).events, undefined, 'event 1 is too old')
    t.same((await adapter.history('x', { since: 1, epoch: first.epoch }, short)).events?.length, 1, 'event 2 is not')
    await delay(1200)
    const after = await adapter.publish('x', event('3'), short)
    t.equal(after.seq, 1, 'a new run of seq')
    t.not(after.epoch, first.epoch, 'with a new epoch')
  })

  t.test('a subscribed room stays alive past its ttl', async (t) => {
    const { adapter } = await started(t, target)
    // Kept alive every half ttl: a ttl of 1 s leaves room for a loaded machine's stalls; three ttls pass.
    const short = { size: 10, ttl: 1000 }
    await adapter.subscribe('kept', short)
    const first = await adapter.publish('kept', event('1'), short)
    await delay(3000)
    const next = await adapter.publish('kept', event('2'), short)
    t.same(next, { seq: 2, epoch: first.epoch })
    await adapter.unsubscribe('kept')
    await adapter.unsubscribe('never-held')
    // Longer than the keep-alive period (half the ttl): it runs once more with nothing held, and does nothing.
    await delay(600)
    await adapter.close?.()
  })

  t.test('volatile events reach subscribers with seq 0 and leave no trace', async (t) => {
    const { adapter, seen } = await started(t, target)
    t.same(await adapter.publish('v', volatile('nobody'), policy), { seq: 0, epoch: '' }, 'no room, no position')
    await adapter.subscribe('v', policy)
    const kept = await adapter.publish('v', event('kept'), policy)
    t.same(await adapter.publish('v', volatile('tick'), policy), kept, 'the room position is unchanged')
    await until(() => seen.length === 2, 'two publications')
    t.same(
      seen.map((p) => [p.seq, p.epoch, p.frame.toString()]),
      [
        [1, kept.epoch, '{"type":"t","room":"r","seq":1,"data":"kept"}'],
        [0, '', '{"type":"v","room":"r","data":"tick"}']
      ]
    )
    t.same((await adapter.history('v', { since: 0, epoch: kept.epoch }, policy)).events?.length, 1, 'only the kept event')
  })

  t.test('an immediate event is marked so on every instance; others are not', async (t) => {
    const { adapter, seen } = await started(t, target)
    await adapter.subscribe('i', policy)
    await adapter.publish('i', { ...event('urgent'), immediate: true }, policy)
    await adapter.publish('i', event('plain'), policy)
    await adapter.publish('i', { ...volatile('urgent tick'), immediate: true }, policy)
    await adapter.publish('i', volatile('tick'), policy)
    await until(() => seen.length === 4, 'four publications')
    t.same(
      seen.map((p) => [p.seq, p.immediate === true, p.frame.toString()]),
      [
        [1, true, '{"type":"t","room":"r","seq":1,"data":"urgent"}'],
        [2, false, '{"type":"t","room":"r","seq":2,"data":"plain"}'],
        [0, true, '{"type":"v","room":"r","data":"urgent tick"}'],
        [0, false, '{"type":"v","room":"r","data":"tick"}']
      ]
    )
  })

  t.test('presence: a user is one member however many connections; join on the first, leave after the last', async (t) => {
    const { adapter } = await started(t, target)
    const ttl = 60_000
    t.same(await adapter.presenceAdd('p', { connectionId: 'c1', userId: 'ann', info: { name: 'Ann' } }, ttl), {
      kind: 'join',
      member: { user: 'ann', connections: 1, info: { name: 'Ann' } }
    })
    t.equal(await adapter.presenceAdd('p', { connectionId: 'c2', userId: 'ann', info: { name: 'Ann' } }, ttl), undefined)
    t.same(await adapter.presenceAdd('p', { connectionId: 'c3', userId: 'bob' }, ttl), {
      kind: 'join',
      member: { user: 'bob', connections: 1 }
    })
    const list = await adapter.presenceList('p')
    t.same(
      list.sort((a, b) => a.user.localeCompare(b.user)),
      [
        { user: 'ann', connections: 2, info: { name: 'Ann' } },
        { user: 'bob', connections: 1 }
      ]
    )
    t.equal(await adapter.presenceRemove('p', 'c1'), undefined, 'ann still has a connection')
    t.same(await adapter.presenceRemove('p', 'c2'), { kind: 'leave', member: { user: 'ann', connections: 0 } })
    t.equal(await adapter.presenceRemove('p', 'c2'), undefined, 'removing twice changes nothing')
    t.equal(await adapter.presenceRemove('nowhere', 'c9'), undefined)
    t.same(await adapter.presenceList('p'), [{ user: 'bob', connections: 1 }])
    t.same(await adapter.presenceList('nowhere'), [])
  })

  t.test('presence entries not refreshed expire, and their users leave once', async (t) => {
    const { adapter } = await started(t, target)
    await adapter.presenceAdd('e', { connectionId: 'mine', userId: 'me' }, 400)
    await adapter.presenceAdd('e', { connectionId: 'crashed', userId: 'gone' }, 400)
    await adapter.presenceAdd('e', { connectionId: 'crashed-2', userId: 'gone' }, 400)
    await delay(200)
    t.same(await adapter.presenceRefresh('e', ['mine'], 400), [], 'nothing expired yet')
    await delay(300)
    t.same(await adapter.presenceList('e'), [{ user: 'me', connections: 1 }], 'the expired entries are not listed')
    t.same(await adapter.presenceRefresh('e', ['mine'], 400), [{ kind: 'leave', member: { user: 'gone', connections: 0 } }])
    t.same(await adapter.presenceRefresh('e', ['mine'], 400), [], 'told once')
    t.same(await adapter.presenceRefresh('nowhere', ['x'], 400), [])
    await adapter.presenceAdd('solo', { connectionId: 's1', userId: 'solo' }, 50)
    await delay(80)
    t.same(await adapter.presenceRefresh('solo', [], 50), [{ kind: 'leave', member: { user: 'solo', connections: 0 } }])
    t.same(await adapter.presenceList('solo'), [])
  })

  t.test('state: fields written together, read back, claimed once, taken once', async (t) => {
    const { adapter } = await started(t, target)
    const ttl = 60_000
    t.same(await adapter.stateRead('st'), {}, 'no state yet')
    await adapter.stateWrite('st', { a: '1', b: '2' }, ttl)
    await adapter.stateWrite('st', { b: null, c: '3' }, ttl)
    t.same(await adapter.stateRead('st'), { a: '1', c: '3' })
    t.equal(await adapter.stateClaim('st', 'k', 'first', ttl), 'first', 'an empty field is claimed')
    t.equal(await adapter.stateClaim('st', 'k', 'second', ttl), 'first', 'a held field is not, and its value is told')
    t.equal(await adapter.stateTake('st', 'a', { done: 'yes' }, ttl), true, 'a held field is taken, with its changes')
    t.equal(await adapter.stateTake('st', 'a', { done: 'again' }, ttl), false, 'but only once')
    t.equal(await adapter.stateTake('nowhere', 'a', {}, ttl), false)
    t.same(await adapter.stateRead('st'), { c: '3', k: 'first', done: 'yes' })
    t.same(await adapter.stateRead('nowhere'), {}, "another room's state is its own")
  })

  t.test('state lives at least ttl after the latest write, then goes as a whole', async (t) => {
    const { adapter } = await started(t, target)
    await adapter.stateWrite('sx', { long: 'x' }, 600)
    await adapter.stateWrite('sx', { short: 'y' }, 50)
    await delay(150)
    t.same(await adapter.stateRead('sx'), { long: 'x', short: 'y' }, 'a shorter ttl never shortens what is kept')
    await delay(600)
    t.same(await adapter.stateRead('sx'), {}, 'gone after the longest ttl')
    t.equal(await adapter.stateClaim('sx', 'long', 'new', 100), 'new', 'and can be claimed afresh')
  })

  t.test('documents: a commit on the stored version stores and publishes; one on any other changes nothing', async (t) => {
    const { adapter, seen } = await started(t, target)
    const read = adapter.documentRead?.bind(adapter) as NonNullable<Adapter['documentRead']>
    const commit = adapter.documentCommit?.bind(adapter) as NonNullable<Adapter['documentCommit']>
    await adapter.subscribe('d', policy)
    t.equal(await read('d'), undefined, 'no document yet')
    t.equal(await commit('d', commitOf(2), policy), undefined, 'a base that is not there is refused')
    const first = await commit('d', commitOf(1), policy)
    t.equal(first?.seq, 1, 'the first commit is published as the room’s next event')
    t.equal(await commit('d', commitOf(1), policy), undefined, 'a second first version is refused')
    t.same(await read('d'), { epoch: 'e1', version: 1, value: '"v1"' })
    t.equal((await commit('d', { ...commitOf(2), event: { ...commitOf(2).event, immediate: true } }, policy))?.seq, 2)
    t.equal(await commit('d', commitOf(2), policy), undefined, 'a commit on an old version is refused')
    t.equal(await commit('d', commitOf(3, 'other'), policy), undefined, 'and one on another epoch')
    t.same(await read('d'), { epoch: 'e1', version: 2, value: '"v2"' })
    await until(() => seen.length === 2, 'two publications')
    t.same(
      seen.map((p) => p.frame.toString()),
      ['{"type":"state_patch","room":"d","seq":1,"data":1}', '{"type":"state_patch","room":"d","seq":2,"data":2}'],
      'only the commits that stored were published'
    )
    t.same(
      seen.map((p) => p.immediate === true),
      [false, true],
      'an immediate event is marked so, as by publish'
    )
    const history = await adapter.history('d', { since: 0, epoch: first?.epoch }, policy)
    t.equal(history.events?.length, 2, 'and kept in the history')
    t.equal(await read('elsewhere'), undefined, "another room's document is its own")
  })

  t.test('a document goes ttl after its last commit, and then a first version may start again', async (t) => {
    const { adapter } = await started(t, target)
    const read = adapter.documentRead?.bind(adapter) as NonNullable<Adapter['documentRead']>
    const commit = adapter.documentCommit?.bind(adapter) as NonNullable<Adapter['documentCommit']>
    t.ok(await commit('dx', commitOf(1, 'e1', 80), policy), 'stored')
    await delay(200)
    t.equal(await read('dx'), undefined, 'gone after its ttl')
    t.ok(await commit('dx', commitOf(1, 'e2', 60_000), policy), 'a new first version')
    t.same(await read('dx'), { epoch: 'e2', version: 1, value: '"v1"' })
  })

  if (!target.shared) return

  t.test('two instances committing on one version at once: exactly one stores, and only its event is published', async (t) => {
    const a = await started(t, target)
    const b = await started(t, target)
    await a.adapter.subscribe('dr', policy)
    const commits = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        ((i % 2 === 0 ? a : b).adapter.documentCommit as NonNullable<Adapter['documentCommit']>)('dr', commitOf(1), policy)
      )
    )
    t.equal(commits.filter((c) => c !== undefined).length, 1, 'one commit won')
    await a.adapter.publish('dr', event('marker'), policy)
    await until(() => a.seen.some((p) => p.seq === 2), 'the marker')
    t.same(
      a.seen.map((p) => p.seq),
      [1, 2],
      'one state event, then the marker'
    )
  })

  t.test('two instances claiming or taking one field at once: exactly one wins, and both learn its value', async (t) => {
    const a = await started(t, target)
    const b = await started(t, target)
    const claims = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).adapter.stateClaim('race', 'k', `v${i}`, 60_000))
    )
    t.equal(new Set(claims).size, 1, 'one value for everyone')
    const takes = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).adapter.stateTake('race', 'k', {}, 60_000)))
    t.equal(takes.filter(Boolean).length, 1, 'taken once')
  })

  t.test('two instances publishing to one room at once: distinct seqs, and both see every event in seq order', async (t) => {
    const a = await started(t, target)
    const b = await started(t, target)
    await a.adapter.subscribe('shared', policy)
    await b.adapter.subscribe('shared', policy)
    const n = 200
    const positions = await Promise.all(
      Array.from({ length: n }, (_, i) => (i % 2 === 0 ? a : b).adapter.publish('shared', event(String(i)), policy))
    )
    t.same(
      positions.map((p) => p.seq).sort((x, y) => x - y),
      Array.from({ length: n }, (_, i) => i + 1)
    )
    await until(() => a.seen.length === n && b.seen.length === n, 'every publication on both')
    const order = Array.from({ length: n }, (_, i) => i + 1)
    t.same(
      a.seen.map((p) => p.seq),
      order
    )
    t.same(
      b.seen.map((p) => p.seq),
      order
    )
  })

  t.test("one instance's presence is the other's: a user is counted once across instances", async (t) => {
    const a = await started(t, target)
    const b = await started(t, target)
    t.equal((await a.adapter.presenceAdd('px', { connectionId: 'a1', userId: 'u' }, 60_000))?.kind, 'join')
    t.equal(await b.adapter.presenceAdd('px', { connectionId: 'b1', userId: 'u' }, 60_000), undefined)
    t.same(await b.adapter.presenceList('px'), [{ user: 'u', connections: 2 }])
    t.equal(await a.adapter.presenceRemove('px', 'a1'), undefined)
    t.same(await b.adapter.presenceRemove('px', 'b1'), { kind: 'leave', member: { user: 'u', connections: 0 } })
  })
}
