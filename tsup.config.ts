import { defineConfig } from 'tsup'

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    client: 'src/client/index.ts',
    redis: 'src/adapters/redis.ts',
    testing: 'src/testing.ts',
    emitter: 'src/emitter.ts',
    react: 'src/react/index.ts',
    'ag-ui': 'src/ag-ui/index.ts',
    'ag-ui-client': 'src/ag-ui/client.ts'
  },
  format: ['esm', 'cjs'],
  dts: true,
  // Maps point into src/ for stack traces and debuggers but carry no copy of it: the package ships no sources.
  sourcemap: true,
  esbuildOptions(options) {
    options.sourcesContent = false
  },
  clean: true,
  target: 'node20',
  splitting: false,
  treeshake: true,
  // Optional peers of fastify-realtime/ag-ui/client, installed by the app that uses it.
  external: ['@ag-ui/client', 'rxjs']
})
