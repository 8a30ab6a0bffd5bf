import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', client: 'src/client/index.ts', redis: 'src/adapters/redis.ts', testing: 'src/testing.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: false,
  treeshake: true,
  // The client applies JSON Patches in the browser, where a bare import cannot be resolved: bundled in.
  noExternal: [/^fast-json-patch/]
})
