// The names the README's TypeScript snippets use without defining them: the reader's own app, client and
// functions. Each snippet is compiled as a module, so one that defines a name itself shadows the one here.
declare const app: import('fastify').FastifyInstance
declare const realtime: typeof import('fastify-realtime').default
declare const Type: typeof import('fastify-realtime').Type
declare const defineEvents: typeof import('fastify-realtime').defineEvents
declare const agentEvents: typeof import('fastify-realtime').agentEvents
declare const events: typeof import('./server/realtime.js').events
declare const secret: string
declare const jwt: { secret: string }
declare const connectionId: string
declare const runId: string
declare const me: string
declare const input: string
declare const badge: { textContent: string | null }
declare const client: import('fastify-realtime/client').RealtimeClient<typeof import('./server/realtime.js').events>
declare const question: import('fastify-realtime/client').ClientQuestion<typeof import('./server/realtime.js').events>
declare const RunStart: typeof import('./server/realtime.js').messages['run:start']
declare const model: { generate(prompt: string): AsyncIterable<string> }
declare const agent: { stream(prompt: string, options: { signal: AbortSignal }): AsyncIterable<{ text: string }> }
declare function ownsWorkflow(userId: string, room: string): Promise<boolean>
declare function canRead(user: import('fastify-realtime').RealtimeUser, room: string): boolean
declare function showTyping(from: string, typing: boolean): void
declare function startRun(userId: string, prompt: string): Promise<string>
declare function startRun(app: import('fastify').FastifyInstance, prompt: string): Promise<{ runId: string }>
declare function renderDialogs(open: readonly unknown[]): void
declare function render(id: string | number | undefined, content: string, options: { done: boolean }): void
declare function loadRunState(room: string, userId: string): Promise<unknown>
declare function append(text: string): void
declare function redraw(snapshot: unknown): void
declare function askTheUser(question: string, options?: readonly { id: string; label: string }[]): Promise<string>
declare function drawPeople(members: readonly unknown[], change?: unknown): void
declare function randomUUID(): string
declare function render(text: string): void
declare function mayWatch(user: import('fastify-realtime').RealtimeUser, room: string): boolean
declare const llm: { stream(messages: readonly unknown[], options: { signal: AbortSignal }): AsyncIterable<string> }
declare function search(query: string): Promise<unknown>
declare function getToken(): Promise<string>
declare const token: string
declare function render(event: { type: string }): void
declare function tenantRooms(user: import('fastify-realtime').RealtimeUser): Promise<string[]>
declare const ctx: { connection: { id: string } }
declare const createClient: typeof import('fastify-realtime/client').createClient
declare const url: string
declare function showBanner(text: string): void
declare const fastifySession: import('fastify').FastifyPluginAsync<{ secret: string; cookie?: { secure?: boolean } }>
declare const keys: { lookup(key: unknown): Promise<import('fastify-realtime').AuthenticatedUser | null> }
declare const tenants: { hasOrigin(origin: string): Promise<boolean> }
declare const fastifyCors: import('fastify').FastifyPluginAsync<{ origin: string[]; credentials?: boolean }>
declare function buildGetJwks(options: { providerDiscovery?: boolean; issuersWhitelist?: string[] }): {
  getPublicKey(options: { kid?: string; alg?: string; domain: string }): Promise<string>
}
type Plan = { nodes: { id: string; status: string }[] }
declare function setPlan(plan: Plan | undefined): void
