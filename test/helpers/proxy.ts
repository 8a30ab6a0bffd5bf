import { createServer, Socket as NetSocket, type Socket } from 'node:net'

interface Test {
  teardown(fn: () => unknown): void
}

/** One connection through the proxy. While `holed`, every byte either way is dropped and nothing is closed. */
export interface ProxyPair {
  readonly client: Socket
  readonly server: Socket
  holed: boolean
}

export interface TcpProxy {
  readonly port: number
  /** Every connection so far, oldest first. */
  readonly pairs: ProxyPair[]
  /** Silences every connection, for good, and every one opened until `mend()`: a path that drops packets. */
  hole(): void
  /** Connections opened from now on pass again; those silenced stay so, as after a NAT forgot them. */
  mend(): void
}

/** A TCP proxy on 127.0.0.1 in front of `port`, whose connections the test can black-hole; closed when the test ends. */
export async function tcpProxy(t: Test, port: number): Promise<TcpProxy> {
  const pairs: ProxyPair[] = []
  let holing = false
  const proxy = createServer((client) => {
    const server = new NetSocket()
    const pair: ProxyPair = { client, server, holed: holing }
    pairs.push(pair)
    server.connect(port, '127.0.0.1')
    client.on('data', (d: Buffer) => pair.holed || server.write(d))
    server.on('data', (d: Buffer) => pair.holed || client.write(d))
    for (const socket of [client, server]) socket.on('error', () => {})
    client.on('close', () => server.destroy())
    server.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const pair of pairs) {
      pair.client.destroy()
      pair.server.destroy()
    }
    proxy.close()
  })
  return {
    port: (proxy.address() as { port: number }).port,
    pairs,
    hole() {
      holing = true
      for (const pair of pairs) pair.holed = true
    },
    mend() {
      holing = false
    }
  }
}
