/**
 * The API's paths, built with each name URL-encoded, so clients never concatenate paths by hand.
 * Every path here is served by daemon/api/routes/; statuses: 200 (201 on create), and on error
 * the ErrorBody shape with 400 (bad request or JSON), 401, 403, 404, 409 (conflict), 413 (body too
 * large), 422 (invalid job or entity), 500.
 */
const e = encodeURIComponent;

export const apiPaths = {
  /** OPTIONS: the enabled authentication methods. */
  root: () => '/',
  whoami: () => '/whoami',
  health: () => '/health',
  stats: (queue?: string) => (queue === undefined ? '/stats' : `/stats/${e(queue)}`),
  queues: () => '/queue',
  queue: (queue: string) => `/queue/${e(queue)}`,
  queueJobs: (queue: string) => `/queue/${e(queue)}/jobs`,
  queuePause: (queue: string) => `/queue/${e(queue)}/pause`,
  queueResume: (queue: string) => `/queue/${e(queue)}/resume`,
  queueTypes: (queue: string) => `/queue/${e(queue)}/type`,
  queueHosts: (queue: string) => `/queue/${e(queue)}/host`,
  queueTypeHosts: (queue: string, type: string) => `/queue/${e(queue)}/type/${e(type)}/host`,
  tasks: (queue: string) => `/queue/${e(queue)}/tasks`,
  task: (queue: string, task: string) => `/queue/${e(queue)}/task/${e(task)}`,
  taskResults: (queue: string, task: string) => `/queue/${e(queue)}/task/${e(task)}/results`,
  taskResume: (queue: string, task: string) => `/queue/${e(queue)}/task/${e(task)}/resume`,
  jobs: () => '/jobs',
  job: (id: string) => `/job/${e(id)}`,
  jobResults: (id: string) => `/job/${e(id)}/results`,
  jobLastResult: (id: string) => `/job/${e(id)}/results/last`,
  jobCancel: (id: string) => `/job/${e(id)}/cancel`,
  jobRetry: (id: string) => `/job/${e(id)}/retry`,
  jobPause: (id: string) => `/job/${e(id)}/pause`,
  jobResume: (id: string) => `/job/${e(id)}/resume`,
  jobLog: (id: string) => `/job/${e(id)}/log`,
  schedules: () => '/schedule',
  schedule: (name: string) => `/schedule/${e(name)}`,
  types: () => '/type',
  type: (name: string) => `/type/${e(name)}`,
  hosts: () => '/host',
  users: () => '/user',
  user: (name: string) => `/user/${e(name)}`,
  userPermissions: (name: string) => `/user/${e(name)}/permissions`,
  userPermission: (name: string, id: number) => `/user/${e(name)}/permissions/${id}`,
  tokens: () => '/token',
  token: (id: string) => `/token/${e(id)}`,
  events: () => '/events',
  metrics: () => '/metrics',
  openapi: () => '/openapi.json',
} as const;
