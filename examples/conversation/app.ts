import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import realtime, { defineEvents, defineMessages, type RealtimeApi, RealtimeError, Type } from '../../src/index.js'
import { servePage } from '../shared/page.js'
import { assistantReply, tokens } from './assistant.js'
import { type Conversation, Conversations, conversationRoom, summary } from './conversations.js'

export interface AppOptions {
  /** JWT secret. Default: `JWT_SECRET`, else a random one made at start (the sign-ins then die with the process). */
  secret?: string
  logger?: FastifyServerOptions['logger']
  /** Origins allowed to open the WebSocket with the cookie: the page's own, e.g. `http://localhost:3000`. */
  origins: readonly string[]
  /** Pause between two tokens of the assistant's reply, in ms. Default 80. */
  tokenMs?: number
}

/** The cookie that holds the JWT: HttpOnly, so the page's JavaScript never sees it. */
const COOKIE = 'token'
const SIGN_IN_FOR = 8 * 60 * 60

/** What the server sends into a conversation's room `conv:<id>`. */
export const events = defineEvents({
  message: Type.Object({ id: Type.String(), author: Type.String(), text: Type.String(), ts: Type.String() }),
  /** The assistant's reply, streamed token by token into `text` (`app.realtime.stream()`). */
  assistant: Type.Object({ id: Type.String(), text: Type.String() }),
  /** Sent by the pages themselves (`client.publish()`), never by the server. */
  typing: Type.Object({ typing: Type.Boolean() })
})

/** What a page sends, acknowledged with the message's id. */
export const messages = defineMessages({
  'message:send': {
    data: Type.Object({ conversationId: Type.String({ pattern: '^[0-9a-f]{8}$' }), text: Type.String({ minLength: 1, maxLength: 2000 }) }),
    ack: Type.Object({ id: Type.String() })
  }
})

const userName = { type: 'string', minLength: 1, maxLength: 32, pattern: '^[A-Za-z0-9_-]+$' } as const
const loginBody = { type: 'object', properties: { user: userName }, required: ['user'], additionalProperties: false } as const
const createBody = {
  type: 'object',
  properties: { title: { type: 'string', minLength: 1, maxLength: 80 } },
  additionalProperties: false
} as const
const idParams = { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9a-f]{8}$' } }, required: ['id'] } as const
const shareBody = loginBody

const newId = () => randomBytes(6).toString('hex')

/**
 * A chat app: people sign in by name (a JWT in an HttpOnly cookie), own conversations and may share them; each
 * conversation is the room `conv:<id>`, where messages are echoed, a simulated assistant streams its replies, and
 * the people in it see who is here and who is typing.
 */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const secret = options.secret ?? process.env.JWT_SECRET ?? randomBytes(48).toString('hex')
  const tokenMs = options.tokenMs ?? 80
  const app = Fastify({ logger: options.logger ?? false })
  const conversations = new Conversations()

  await app.register(realtime, {
    events,
    jwt: { secret, cookie: COOKIE },
    // The cookie goes with every request the browser makes here, whichever page asks: only these pages may use it.
    cors: { origin: [...options.origins] },
    // The ownership check, for subscribing (reading) and for publishing (typing) alike.
    authorize: ({ user, room }) => conversations.canAccess(user.sub, conversations.ofRoom(room)),
    presence: (room) => room.startsWith('conv:'),
    // A first subscribe draws the conversation from the store; a reconnect resumes from the room's history instead.
    snapshot: ({ room }) => ({ messages: conversations.ofRoom(room)?.messages ?? [] }),
    history: { size: 500, ttl: 30 * 60_000 }
  })

  // Typed by this app's registry. An app declares it once for `app.realtime` (README "Typed events"); this repository
  // holds several examples and the tests, which would all see that declaration, so the example names it here.
  const rt = app.realtime as unknown as RealtimeApi<typeof events>

  // Replies still streaming when the app closes stop at their next token.
  const shutdown = new AbortController()
  app.addHook('onClose', async () => shutdown.abort())

  rt.handle('message:send', messages['message:send'], async ({ data, user }) => {
    const conversation = conversations.get(data.conversationId)
    if (!conversations.canAccess(user.sub, conversation)) throw new RealtimeError('forbidden', 'not your conversation')
    const message = { id: newId(), author: user.sub, text: data.text, ts: new Date().toISOString() }
    conversation.messages.push(message)
    await rt.emit(conversationRoom(conversation.id), { type: 'message', data: message })
    void reply(conversation, data.text).catch((err) => app.log.error({ err }, 'the assistant failed'))
    return { id: message.id }
  })

  /** Streams the assistant's reply into the room, then keeps it with the conversation. */
  async function reply(conversation: Conversation, text: string): Promise<void> {
    const id = newId()
    const stream = rt.stream(conversationRoom(conversation.id), { type: 'assistant', data: { id, text: '' } }, { field: 'text' })
    for (const token of tokens(assistantReply(text))) {
      await new Promise((resolve) => setTimeout(resolve, tokenMs))
      if (shutdown.signal.aborted) return
      stream.append(token)
    }
    conversation.messages.push({ id, author: 'assistant', text: stream.text, ts: new Date().toISOString() })
    await stream.end()
  }

  /** The signed-in user of an HTTP request, from the same cookie the WebSocket reads. */
  function userOf(request: FastifyRequest): string | undefined {
    const token = request.cookies[COOKIE]
    try {
      return token === undefined ? undefined : app.jwt.verify<{ sub: string }>(token).sub
    } catch {
      return undefined
    }
  }

  /** The same, for the routes that need one: 401 without a valid cookie. */
  function signedIn(request: FastifyRequest): string {
    const user = userOf(request)
    if (user === undefined) throw Object.assign(new Error('sign in first (POST /login)'), { statusCode: 401 })
    return user
  }

  // Development sign-in: any name, no password. A real app checks a password or an identity provider here.
  app.post<{ Body: { user: string } }>('/login', { schema: { body: loginBody } }, async (request, reply) => {
    const { user } = request.body
    const token = app.jwt.sign({ sub: user }, { expiresIn: SIGN_IN_FOR })
    // SameSite=Lax: another site's page cannot make the browser send it with a POST. Add `secure: true` behind HTTPS.
    reply.setCookie(COOKIE, token, { httpOnly: true, sameSite: 'lax', path: '/', maxAge: SIGN_IN_FOR })
    return { user }
  })

  app.post('/logout', async (_request, reply) => reply.clearCookie(COOKIE, { path: '/' }).code(204).send())

  // Who the cookie says is signed in (`null`: nobody), for the page, which cannot read the cookie.
  app.get('/me', async (request) => ({ user: userOf(request) ?? null }))

  app.get('/conversations', async (request) => ({ conversations: conversations.listFor(signedIn(request)).map(summary) }))

  app.post<{ Body: { title?: string } }>('/conversations', { schema: { body: createBody } }, async (request, reply) => {
    const user = signedIn(request)
    const mine = conversations.listFor(user).filter((c) => c.owner === user).length
    const conversation = conversations.create(user, request.body?.title ?? `Conversation ${mine + 1}`)
    return reply.code(201).send(summary(conversation))
  })

  app.post<{ Params: { id: string }; Body: { user: string } }>(
    '/conversations/:id/share',
    { schema: { params: idParams, body: shareBody } },
    async (request, reply) => {
      const user = signedIn(request)
      const conversation = conversations.get(request.params.id)
      if (conversation === undefined) return reply.code(404).send({ message: 'no such conversation' })
      if (conversation.owner !== user) return reply.code(403).send({ message: 'only the owner may share a conversation' })
      conversations.share(conversation, request.body.user)
      return summary(conversation)
    }
  )

  await servePage(app, new URL('./public/', import.meta.url), ['index.html', 'chat.css', 'chat.js'], 'example:conversation')
  return app
}
