/**
 * The typed client library: what the `batch` CLI uses, for other TypeScript and JavaScript
 * programs (`import { BatchClient } from 'batchd/client'`). Every call speaks the daemon's HTTP API
 * and checks the answer against the same schemas the daemon uses (daemon/protocol/).
 * Examples: docs/client-library.md (run as tests).
 */
export { BatchClient, type JobListQuery } from './client.ts';
export { ApiError, ProtocolError, UnreachableError } from './errors.ts';
export type { Auth, TransportOptions } from './transport.ts';
export type { JobInfo, TaskResult, TaskStatus } from '../protocol/index.ts';
