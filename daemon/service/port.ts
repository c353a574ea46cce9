import type { ConfigStore } from '../config/store.ts';
import type { QueueSettings } from '../config/schema.ts';
import type { Dispatcher } from '../dispatch/dispatcher.ts';
import type { EventBus } from '../events.ts';
import type { HostLayer } from '../hosts/layer.ts';
import type { Logger } from '../log.ts';
import type { JobStateName } from '../jobs/status.ts';
import type { QueueCreate, QueuePurge, QueueSettingsInput } from '../protocol/queues.ts';
import type { AcceptedJob } from '../spool/accept.ts';
import type { JobLocation } from '../spool/find.ts';
import type { RequestVerb } from '../spool/requests.ts';
import type { SpoolReads } from './reads.ts';

export type { AcceptedJob, JobLocation, RequestVerb };
export type { JobListing } from '../views/jobs.ts';
export type { TaskJob, TaskManifest } from '../tasks/tasks.ts';
export { STDERR_FILE, STDOUT_FILE } from '../spool/state-file.ts';

/** A job file submitted by other means than a drop: its text, or its parsed content. */
export type SubmitInput = { text: string; ext: 'yaml' | 'json' } | { data: unknown };

/** The queues the daemon serves, read-only: changes go through `QueueAdmin`. */
export interface QueueCatalog {
  names(): string[];
  has(queue: string): boolean;
  settings(queue: string): QueueSettings;
}

/** Queue create, update and delete: the spool's folders and `queue.yaml` files change in the core. */
export interface QueueAdmin {
  create(input: QueueCreate): void;
  update(name: string, change: QueueSettingsInput): void;
  delete(name: string, forced: boolean): Promise<void>;
  /** Finished jobs are deleted, queued ones cancelled, running ones refused. */
  purge(queue: string, status: JobStateName): Promise<QueuePurge>;
  /** One finished job's folder removed (queued and running jobs are refused). */
  deleteFinishedJob(id: string): Promise<void>;
  /** Leave a control request in the queue's `requests/` folder, for the dispatcher that runs the job. */
  leaveRequest(queue: string, id: string, verb: RequestVerb, text: string): void;
}

/** Schedules kept as files in the config folder (the built-in ones have none). */
export interface ScheduleFiles {
  /** The file a schedule was read from; undefined for a built-in one (or without a config folder). */
  fileOf(name: string): string | undefined;
  /** Throws (CONFLICT) when there is no config folder to keep schedules in. */
  writable(): void;
  /** Write a new, already validated schedule and load it. */
  create(schedule: { name: string }): void;
  /** Remove a schedule's file and forget it; false if it has none. */
  remove(name: string): boolean;
}

/** The control verbs on jobs and queues, and the dispatcher's own figures. */
export type JobControl = Pick<
  Dispatcher,
  | 'cancel'
  | 'retry'
  | 'pause'
  | 'resume'
  | 'pauseQueue'
  | 'resumeQueue'
  | 'move'
  | 'reorder'
  | 'setPriority'
  | 'changeQueued'
  | 'setNotes'
  | 'waitReason'
  | 'runningCount'
  | 'queuedCount'
>;

/** What clients may see of the remote hosts. */
export type HostStatus = Pick<HostLayer, 'states' | 'host' | 'active'>;

/**
 * What a front end (the HTTP API) may ask of a running daemon: submit, the control verbs, the read
 * views, queue administration, the event stream and health. The daemon implements it (daemon.ts);
 * the API depends on this and nothing else of the core, so neither the `Daemon` class nor the
 * spool's layout and registry are visible to it.
 */
export interface DaemonPort {
  /** Settings, job types, schedules and hosts as configured (read-only for the API). */
  readonly config: ConfigStore;
  readonly log: Logger;
  /** Transitions, acceptances, host and config changes, as they happen. */
  readonly events: EventBus;
  readonly queues: QueueCatalog;
  readonly queueAdmin: QueueAdmin;
  readonly schedules: ScheduleFiles;
  readonly control: JobControl;
  readonly reads: SpoolReads;
  readonly hosts: HostStatus;
  /** The dispatchers sharing this spool (a head count for people). */
  readonly dispatchers: { count(): number };
  /** A stop has begun: the API answers reads but refuses writes until it closes. */
  readonly stopping: boolean;
  readonly containment: { kind: string; description: string };
  /** Find a job's folder by id. */
  locate(id: string): JobLocation | undefined;
  /** Accept a job file (validated as a dropped one); resolves once the jobs are accepted. */
  submitAsync(
    queue: string,
    input: SubmitInput,
    user?: string,
    sees?: (queue: string) => boolean,
  ): Promise<AcceptedJob[]>;
}

/** What serves a daemon to its clients (the HTTP API): chosen by whoever starts the daemon. */
export interface FrontEnd {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Called once the configuration is read and before anything starts (it may refuse, e.g. a listen
 * address that is not allowed); what it returns is called once the daemon is ready.
 */
export type FrontEndStarter = (
  daemon: DaemonPort,
) => Promise<(() => Promise<FrontEnd | undefined>) | undefined>;
