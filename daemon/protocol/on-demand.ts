/**
 * The protocol's schemas for a client that starts often (the `batch` CLI): each module is loaded,
 * and its schemas built, on first use, where `import … from './index.ts'` builds every schema of
 * the API at start (about a seventh of a `batch enqueue`). The daemon imports the modules directly:
 * it builds them once, when it starts, and validates every request and answer with the same schemas.
 */
export const schemasOf = {
  auth: () => import('./auth.ts'),
  common: () => import('./common.ts'),
  config: () => import('./config.ts'),
  health: () => import('./health.ts'),
  jobs: () => import('./jobs.ts'),
  queues: () => import('./queues.ts'),
  submit: () => import('./submit.ts'),
  tasks: () => import('./tasks.ts'),
} as const;
