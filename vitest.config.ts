import { defineConfig } from 'vitest/config'

// Workspace packages resolve to their TypeScript sources through this export
// condition, so tests never need a build (see each package's `exports`).
// Setting conditions replaces Vite's defaults, so those are repeated here.
// `ssr.resolve` is what Node-environment tests use; top-level `resolve` is for
// browser-environment projects.
const sourceCondition = '@tideline/source'

export default defineConfig({
  resolve: {
    conditions: [sourceCondition, 'module', 'browser', 'development|production'],
  },
  ssr: {
    resolve: {
      conditions: [sourceCondition, 'module', 'node', 'development|production'],
    },
  },
  test: {
    include: ['packages/*/test/**/*.spec.ts', 'apps/*/test/**/*.spec.ts'],
    environment: 'node',
    // Two cores here: two forked workers; forks isolate native and worker state.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 20_000,
  },
})
