/** The API's wire format: import this from clients (daemon/client/, the CLI, the web page). */
export * from './auth.ts';
export * from './common.ts';
export * from './config.ts';
export * from './events.ts';
export * from './health.ts';
export * from './jobs.ts';
export * from './queues.ts';
export * from './tasks.ts';
export * from './routes.ts';
