/**
 * `fastify-realtime/ag-ui`: the AG-UI event set as a registry preset, and the types of `app.realtime.agui`. The
 * route itself is `app.realtime.agui.route()`; the client-side agent is `fastify-realtime/ag-ui/client`.
 */
export { type AguiEvents, AguiInterrupt, AguiMessage, AguiResumeEntry, aguiEvents, RunAgentInput } from './events.js'
export { aguiLogRoom, aguiRoom, aguiStateRoom } from './rooms.js'
export type { AguiApi, AguiHandler, AguiRouteOptions } from './route.js'
export type { AguiAnswer, AguiEvent, AguiRun, AguiState, AguiTextMessage, AguiToolCall, InterruptOptions } from './run.js'
