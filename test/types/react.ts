// Type tests of fastify-realtime/react: the hooks take the app's registries and state types as type arguments.
// Compiled by test/react.test.ts; every @ts-expect-error must be needed, or the compile fails.
import { createClient } from '../../src/client/index.js'
import { agentEvents, defineEvents, Type } from '../../src/index.js'
import { RealtimeProvider, useConnection, useRoom, useRoomState, useStream } from '../../src/react/index.js'

const events = defineEvents({ ...agentEvents, 'invoice:paid': Type.Object({ invoiceId: Type.String() }) })
const client = createClient({ url: 'ws://localhost:3000/ws', events })
const provided = RealtimeProvider({ client })

interface Graph {
  nodes: Record<string, 'todo' | 'done'>
}

export function Component() {
  const room = useRoom<typeof events>('billing:1')
  const paid = room.events.map((event) => {
    if (event.type !== 'invoice:paid') return undefined
    const id: string = event.data.invoiceId
    // @ts-expect-error invoiceId is a string
    const n: number = event.data.invoiceId
    return [id, n]
  })
  const graph = useRoomState<Graph>('graph:1')
  const status: 'todo' | 'done' | undefined = graph.value?.nodes.a
  const version: number = graph.version
  // @ts-expect-error the value may not be there yet
  const nodes: Graph['nodes'] = graph.value.nodes
  // @ts-expect-error a node is 'todo' or 'done'
  const wrong: 'started' = graph.value?.nodes.a ?? 'started'
  const untyped: unknown = useRoomState('graph:2').value
  // @ts-expect-error a room is named by a string
  useRoomState(42)
  const { text, done } = useStream<typeof events>('billing:1')
  const state: string = useConnection().state
  return [provided, paid, status, version, nodes, wrong, untyped, text, done, state]
}
