import { BatchdError } from '../../errors.ts';
import type { JobStateName } from '../../jobs/status.ts';
import type { Face } from './face.ts';

/**
 * batchd's `seq`: a job's place in its queue. batchd gave each new job the queue's last seq + 1,
 * started New jobs lowest seq first, and renumbered on `priority` (first: below the lowest, last:
 * above the highest, more/less: swap with the neighbour) and on a move (last in the new queue).
 *
 * Here a job's seq is its number, except for queued jobs: the numbers of a queue's queued jobs,
 * sorted, are handed out again in the order the dispatcher will start them. So New jobs list in
 * start order by seq (as the clients show them), a more/less swaps two seqs exactly as batchd did,
 * seq stays unique in the queue (every number is), and a job that nobody reordered keeps its number.
 */
export class QueueSeqs {
  readonly #face: Face;
  readonly #byQueue = new Map<string, { seqOf: Map<string, number>; idOf: Map<number, string> }>();

  constructor(face: Face) {
    this.#face = face;
  }

  /** The seq of a job; `number` is its own number (the seq of any job not queued). */
  seqOf(job: { id: string; queue: string; status: JobStateName }, number: number): number {
    if (job.status !== 'queued') return number;
    return this.#queue(job.queue).seqOf.get(job.id) ?? number;
  }

  /** The job with this seq in `queue` (batchd's `DELETE /queue/:q/:seq`); 404 when there is none. */
  jobOf(queue: string, raw: string): string {
    const seq = /^\d{1,15}$/.test(raw) ? Number(raw) : undefined;
    const queued = seq === undefined ? undefined : this.#queue(queue).idOf.get(seq);
    if (queued !== undefined) return queued;
    const id = seq === undefined ? undefined : this.#face.numbers.idOf(seq);
    // A queued job's own number may now be another queued job's seq: only a job not queued keeps it.
    if (id === undefined || this.#queue(queue).seqOf.has(id))
      throw new BatchdError('UNKNOWN_JOB', `Job not found: ${raw} in queue ${queue}`, { queue });
    return id;
  }

  #queue(queue: string): { seqOf: Map<string, number>; idOf: Map<number, string> } {
    const known = this.#byQueue.get(queue);
    if (known !== undefined) return known;
    const { daemon } = this.#face.ctx;
    // Only a queue's own folder is read (the name may come from a request path).
    const order = daemon.queues.names().includes(queue) ? daemon.reads.queuedInOrder(queue) : [];
    const numbers = this.#face.numbers.numbersOf(order);
    const sorted = order.map((id) => numbers.get(id) as number).sort((a, b) => a - b);
    const seqOf = new Map<string, number>();
    const idOf = new Map<number, string>();
    order.forEach((id, i) => {
      seqOf.set(id, sorted[i] as number);
      idOf.set(sorted[i] as number, id);
    });
    const made = { seqOf, idOf };
    this.#byQueue.set(queue, made);
    return made;
  }
}
