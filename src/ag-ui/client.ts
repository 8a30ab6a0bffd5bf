import { AbstractAgent, type AgentConfig, type BaseEvent, type RunAgentInput } from '@ag-ui/client'
import { Observable } from 'rxjs'
import type { SubscribeOptions, Subscription } from '../client/api.js'
import { aguiLogRoom, aguiRoom } from './rooms.js'

/**
 * What the agent uses of a `fastify-realtime/client`. Every client fits, whatever its app's registries: the agent
 * reads only the AG-UI rooms, whose events it passes on as they come.
 */
export interface AguiClient {
  subscribe(
    room: string,
    handler: (event: { readonly type: string; readonly data: unknown }) => void,
    options: SubscribeOptions
  ): Subscription
  cancel(room: string, runId: string): Promise<void>
}

export interface RealtimeAgentConfig extends AgentConfig {
  /** A connected `fastify-realtime/client`; the app's `authorize` must let it subscribe to `agui:` rooms. */
  client: AguiClient
  /** The HTTP URL of the AG-UI route (`app.realtime.agui.route()`), which starts each run. */
  url: string
  /** Headers of the request that starts a run (e.g. `authorization`). */
  headers?: Record<string, string>
  /** The fetch implementation; default `globalThis.fetch`. */
  fetch?: typeof fetch
}

/**
 * An AG-UI agent whose events come over the realtime WebSocket rather than the HTTP response: it subscribes to the
 * run's log room, then starts the run with a POST whose body it does not read. The client resumes the room across
 * reconnects from the last event it got, so the run's events arrive whole and once, however the socket fares.
 * `abortRun()` cancels the run on the server.
 */
export class RealtimeAgent extends AbstractAgent {
  private readonly config: RealtimeAgentConfig
  private current: RunAgentInput | undefined

  constructor(config: RealtimeAgentConfig) {
    super(config)
    this.config = config
  }

  override run(input: RunAgentInput): Observable<BaseEvent> {
    const { client, url, headers = {} } = this.config
    const fetchImpl = this.config.fetch ?? globalThis.fetch
    this.current = input
    return new Observable<BaseEvent>((observer) => {
      const controller = new AbortController()
      let started = false
      let done = false
      const start = async (): Promise<void> => {
        const res = await fetchImpl(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...headers },
          body: JSON.stringify(input),
          signal: controller.signal
        })
        if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`)
        // The events come over the WebSocket; dropping this copy does not cancel the run.
        await res.body?.cancel()
      }
      const sub = client.subscribe(
        aguiLogRoom(input.threadId, input.runId),
        (frame) => {
          observer.next({ type: frame.type, ...(frame.data as object) } as BaseEvent)
          if (frame.type === 'RUN_FINISHED' || frame.type === 'RUN_ERROR') {
            done = true
            observer.complete()
          }
        },
        {
          // Subscribed before the run starts, so no event can come before the subscription.
          onSubscribed: () => {
            if (started) return
            started = true
            start().catch((err: unknown) => {
              if (!done) observer.error(err)
            })
          },
          onError: (err) => observer.error(err)
        }
      )
      return () => {
        sub.unsubscribe()
        controller.abort()
      }
    })
  }

  /** Stops following the run and cancels it on the server. */
  override abortRun(): void {
    const input = this.current
    if (input !== undefined) this.config.client.cancel(aguiRoom(input.threadId), input.runId).catch(() => undefined)
    super.abortRun()
  }
}
