import type { ServerResponse } from 'node:http'

/** The headers of an event stream: not cached, and not buffered by a proxy in front (nginx reads `X-Accel-Buffering`). */
export const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache',
  Connection: 'keep-alive',
  'X-Accel-Buffering': 'no'
} as const

export interface SseOptions {
  /** Milliseconds a client should wait before reconnecting, sent once as `retry:`. */
  retry: number
  /** Milliseconds between heartbeat comments, which keep proxies from closing an idle stream. */
  heartbeat: number
}

/**
 * Writes Server-Sent Events on a raw response: `id:` and `data:` per event, a `retry:` hint first, and heartbeat
 * comments while idle. A write after the client went away is dropped: a disconnect is not an error of the writer.
 */
export class SseWriter {
  private readonly timer: NodeJS.Timeout
  private open = true

  constructor(
    private readonly res: ServerResponse,
    options: SseOptions
  ) {
    res.writeHead(200, SSE_HEADERS)
    res.write(`retry: ${options.retry}\n\n`)
    this.timer = setInterval(() => this.write(': ping\n\n'), options.heartbeat)
    res.on('close', () => this.end())
  }

  get closed(): boolean {
    return !this.open
  }

  /** One event. `data` is JSON, which has no newline, so it is one `data:` line. */
  event(id: string, data: string): void {
    this.write(`id: ${id}\ndata: ${data}\n\n`)
  }

  end(): void {
    if (!this.open) return
    this.open = false
    clearInterval(this.timer)
    this.res.end()
  }

  private write(chunk: string): void {
    if (this.open && !this.res.destroyed) this.res.write(chunk)
  }
}
