// Reliability 4: every kind of bad token is refused before the upgrade, on an HS256 and an RS256 server alike,
// and no token (nor its signature) reaches the log at trace level.
import { createHmac, generateKeyPairSync } from 'node:crypto'
import { createSigner } from 'fast-jwt'
import t from 'tap'
import { buildApp, logCapture, refused, SECRET, sign } from '../helpers/index.js'

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url')
const now = () => Math.floor(Date.now() / 1000)
const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
const publicPem = publicKey.export({ type: 'spki', format: 'pem' }) as string

/** An HS256 token whose HMAC key is the server's public key: the classic algorithm-confusion attack. */
function confused(claims: Record<string, unknown>): string {
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`
  return `${head}.${createHmac('sha256', publicPem).update(head).digest('base64url')}`
}

t.test(
  'missing, garbage, wrong key, alg none, key confusion, expired, not yet valid: 401 before upgrade, 0 connections, 0 tokens logged',
  async (t) => {
    const logs = logCapture('trace')
    const hs = await buildApp(t, {}, { fastify: logs.fastify })
    const rs = await buildApp(
      t,
      { jwt: { secret: { private: privatePem, public: publicPem }, sign: { algorithm: 'RS256' } } },
      { fastify: logs.fastify }
    )
    const rsSign = createSigner({ key: privatePem, algorithm: 'RS256' })
    const claims = { sub: 'alice', exp: now() + 600 }
    const cases: Array<[string, typeof hs, string | null]> = [
      ['hs: missing', hs, null],
      ['hs: garbage', hs, 'garbage.garbage.garbage'],
      ['hs: another secret', hs, sign('alice', {}, 'an-entirely-different-secret-of-enough-length')],
      ['hs: alg none', hs, `${b64({ alg: 'none' })}.${b64(claims)}.`],
      ['hs: an RS256 token', hs, rsSign(claims)],
      ['hs: expired', hs, sign('alice', { exp: now() - 1 })],
      ['hs: not yet valid', hs, sign('alice', { nbf: now() + 600 })],
      ['rs: missing', rs, null],
      ['rs: HS256 signed with the public key', rs, confused(claims)],
      ['rs: HS256 with the app secret', rs, sign('alice')],
      ['rs: alg none', rs, `${b64({ alg: 'none' })}.${b64(claims)}.`],
      ['rs: expired', rs, rsSign({ sub: 'alice', exp: now() - 1 })]
    ]
    const statuses: Record<string, number> = {}
    for (const [name, app, token] of cases) {
      for (const way of ['header', 'subprotocol', 'query'] as const) {
        const options =
          token === null
            ? { token }
            : way === 'header'
              ? { token }
              : way === 'subprotocol'
                ? { protocols: ['realtime.v1', `bearer.${token}`] }
                : { query: `?token=${token}` }
        const res = await refused(app, 'alice', options)
        statuses[`${name} (${way})`] = res.status
        if (res.status !== 401) t.fail(`${name} via ${way}: ${res.status}`)
      }
    }
    const origin = await refused(hs, 'alice', { headers: { origin: 'https://attacker.example' } })
    t.equal(origin.status, 403, 'a foreign Origin with a valid token: 403')
    t.equal(hs.realtime.stats().connections + rs.realtime.stats().connections, 0, '0 connections')
    t.notOk(
      logs.records().some((r) => r.msg === 'realtime connection opened'),
      "0 'connection opened' log lines"
    )
    const all = logs.lines.join('\n')
    let found = 0
    for (const [, , token] of cases) {
      if (token === null) continue
      if (all.includes(token)) found++
      const signature = token.split('.')[2] ?? ''
      if (signature.length > 8 && all.includes(signature)) found++
    }
    t.equal(found, 0, 'no token and no signature in the log at trace level')
    t.equal(SECRET.length > 0, true)
    t.comment(
      `reliability/auth: ${Object.keys(statuses).length} refused upgrades, all 401; foreign origin 403; 0 connections; tokens found in logs: ${found}`
    )
  }
)
