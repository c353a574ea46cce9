import path from 'node:path';
import { Readable } from 'node:stream';

import { stream } from 'hono/streaming';
import { z } from 'zod';

import { can, type Principal } from '../../auth/permissions.ts';
import { BatchdError, errnoCode } from '../../errors.ts';
import { jobIdSchema, nameSchema } from '../../protocol/common.ts';
import type { JobLocation } from '../../service/port.ts';
import { type DownloadTarget, DownloadTickets } from '../../views/download-tickets.ts';
import { jobInfo } from '../../views/jobs.ts';
import { listOutputs, openOutput, type OutputListing } from '../../views/outputs.ts';
import { tarEnd, tarHeader, tarPadding } from '../../views/tar.ts';
import { type ApiContext, type ApiCtx, remoteAddress } from '../context.ts';
import { assertQueue } from '../queue-admin.ts';
import { demand, type Router } from '../route.ts';
import { jobOf } from './jobs.ts';

const outputFileSchema = z.object({
  name: z.string().meta({ description: "Path inside the job's folder, `/`-separated" }),
  size: z.number().int(),
  modified: z.string(),
  param: z.string().optional().meta({ description: 'The OutputFile parameter naming it' }),
});
const outputListingSchema = z.object({
  files: z.array(outputFileSchema),
  elsewhere: z
    .array(z.object({ param: z.string(), path: z.string() }))
    .meta({ description: 'OutputFile parameters that point outside the job folder: not served' }),
  truncated: z.boolean(),
});

/** A downloaded file is never shown by the browser as a page of the daemon's origin. */
const DOWNLOAD_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; sandbox",
  'X-Content-Type-Options': 'nosniff',
  'Cache-Control': 'private, no-cache',
};

/**
 * A job's output files (the rule: views/outputs.ts): listed, served one by one, and a task's all
 * at once as one tar stream in the task's order. Access is the job's, exactly as for GET /job/:id.
 */
export function registerOutputRoutes(router: Router): void {
  const { ctx } = router;

  router.add(
    {
      method: 'get',
      path: '/job/:id/outputs',
      summary: "A job's output files: `outputs/` in its folder and its OutputFile parameters",
      tag: 'jobs',
      access: { kind: 'job', permission: 'ViewJobs' },
      params: z.object({ id: jobIdSchema }),
      responses: {
        200: { description: 'The files', schema: outputListingSchema },
        404: { description: 'Unknown job' },
      },
    },
    (input) => input.c.json(withRetry(ctx, jobOf(input), (job) => listOutputs(outputJob(ctx, job)))),
  );

  router.add(
    {
      method: 'get',
      path: '/job/:id/outputs/:name',
      summary: 'One output file, as an attachment (name: as listed, URL-encoded, `/` as %2F)',
      tag: 'jobs',
      access: { kind: 'job', permission: 'ViewJobs' },
      params: z.object({ id: jobIdSchema, name: z.string().min(1).max(4096) }),
      responses: {
        200: { description: 'The file', schema: z.string(), mime: 'application/octet-stream' },
        404: { description: 'Unknown job, or no such output' },
      },
    },
    (input) => serveOutput(ctx, input.c, jobOf(input), input.params.name),
  );

  router.add(
    {
      method: 'get',
      path: '/queue/:q/task/:name/outputs',
      summary:
        "Every output file of a task's jobs, in the task's order, as one tar archive (`<index>/<name>`)",
      tag: 'tasks',
      access: { kind: 'permission', permission: 'ViewJobs', scope: ({ params }) => ({ queue: params.q }) },
      params: z.object({ q: nameSchema, name: nameSchema }),
      responses: {
        200: { description: 'A tar archive', schema: z.string(), mime: 'application/x-tar' },
        404: { description: 'Unknown queue or task' },
      },
    },
    ({ c, params, principal }) => taskArchive(ctx, c, principal, params.q, params.name),
  );

  registerTicketRoutes(router);
}

/** One output file, if the job's listing has it, streamed as an attachment. */
async function serveOutput(ctx: ApiContext, c: ApiCtx, job: JobLocation, name: string): Promise<Response> {
  const id = path.basename(job.dir);
  // Only a name the listing gives is served: whatever else the job folder holds is not an output.
  const listed = withRetry(ctx, job, (j) => ({ dir: j.dir, listing: listOutputs(outputJob(ctx, j)) }));
  if (!listed.listing.files.some((f) => f.name === name)) throw notFound(id, name);
  let opened: Awaited<ReturnType<typeof openOutput>>;
  try {
    opened = await openOutput(listed.dir, name);
  } catch (error) {
    // Replaced by a link, a folder or nothing since it was listed: not served.
    if (['ENOENT', 'ELOOP', 'ENOTDIR', 'NOT_FOUND'].includes(errnoCode(error) ?? ''))
      throw notFound(id, name);
    throw error;
  }
  const { handle, size } = opened;
  const headers = {
    ...DOWNLOAD_HEADERS,
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(size),
    'Content-Disposition': attachment(name.split('/').at(-1) ?? 'output'),
    'Last-Modified': opened.modified.toUTCString(),
  };
  if (size === 0) {
    await handle.close();
    return c.body(null, 200, headers);
  }
  // Exactly the size seen at open: a file still growing is cut there, never streamed forever.
  const body = Readable.toWeb(handle.createReadStream({ start: 0, end: size - 1 })) as ReadableStream;
  return c.body(body, 200, headers);
}

/** Every output file of a task's jobs that `principal` may view, as one tar stream. */
function taskArchive(
  ctx: ApiContext,
  c: ApiCtx,
  principal: Principal,
  queue: string,
  task: string,
): Response {
  const { daemon } = ctx;
  assertQueue(ctx, queue);
  const { jobs } = daemon.reads.task(queue, task);
  const width = String(Math.max(jobs.length - 1, 0)).length;
  c.header('Content-Type', 'application/x-tar');
  c.header('Content-Disposition', attachment(`${task}-outputs.tar`));
  for (const [k, v] of Object.entries(DOWNLOAD_HEADERS)) c.header(k, v);
  return stream(c, async (out) => {
    const abort = new AbortController();
    out.onAbort(() => abort.abort());
    for (const member of jobs) {
      if (abort.signal.aborted) return;
      // A job moved to a queue the caller may not view is left out, as GET /job/:id would hide it.
      if (member.queue === undefined || member.state === undefined) continue;
      if (!can(principal, 'ViewJobs', { queue: member.queue })) continue;
      const where = daemon.locate(member.id);
      if (where === undefined) continue;
      let listing: OutputListing;
      try {
        listing = listOutputs(outputJob(ctx, where));
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') continue; // moved while read: its files come next time
        throw error;
      }
      for (const file of listing.files) {
        let opened: Awaited<ReturnType<typeof openOutput>>;
        try {
          opened = await openOutput(where.dir, file.name);
        } catch {
          continue; // gone or replaced since it was listed
        }
        try {
          const prefix = String(member.index).padStart(width, '0');
          await out.write(tarHeader(`${prefix}/${file.name}`, opened.size, opened.modified));
          let sent = 0;
          const chunk = Buffer.alloc(64 * 1024);
          while (sent < opened.size && !abort.signal.aborted) {
            const want = Math.min(chunk.length, opened.size - sent);
            const { bytesRead } = await opened.handle.read(chunk, 0, want, sent);
            // A file that shrank is filled with zeros to the size its header promised.
            const part = bytesRead === 0 ? Buffer.alloc(want) : chunk.subarray(0, bytesRead);
            await out.write(new Uint8Array(part));
            sent += part.length;
          }
          await out.write(tarPadding(opened.size));
        } finally {
          await opened.handle.close();
        }
      }
    }
    await out.write(tarEnd());
  });
}

const ticketSchema = z.object({
  url: z.string().meta({ description: 'GET it (no credentials needed) within the minute, once' }),
  expires_at: z.string(),
});

/**
 * Download tickets (views/download-tickets.ts): POST with the usual credentials for a one-use link
 * to one file, so a browser can save it by navigation, streamed to disk, with no token in a URL.
 */
function registerTicketRoutes(router: Router): void {
  const { ctx } = router;
  const tickets = new DownloadTickets();
  const issued = (c: ApiCtx, principal: Principal, target: DownloadTarget): Response => {
    const { ticket, expiresAt } = tickets.issue(principal, remoteAddress(c), target);
    c.header('Cache-Control', 'no-store');
    return c.json({ url: `/download/${ticket}`, expires_at: new Date(expiresAt).toISOString() }, 201);
  };

  router.add(
    {
      method: 'post',
      path: '/job/:id/outputs/:name/ticket',
      summary: 'A one-use link (60 s) that downloads one output file without credentials',
      tag: 'jobs',
      access: { kind: 'job', permission: 'ViewJobs' },
      params: z.object({ id: jobIdSchema, name: z.string().min(1).max(4096) }),
      responses: {
        201: { description: 'The link', schema: ticketSchema },
        404: { description: 'Unknown job, or no such output' },
      },
    },
    (input) => {
      const { name } = input.params;
      const job = jobOf(input);
      const listing = withRetry(ctx, job, (j) => listOutputs(outputJob(ctx, j)));
      const jobId = path.basename(job.dir);
      if (!listing.files.some((f) => f.name === name)) throw notFound(jobId, name);
      return issued(input.c, input.principal, { kind: 'output', jobId, name });
    },
  );

  router.add(
    {
      method: 'post',
      path: '/queue/:q/task/:name/outputs/ticket',
      summary: "A one-use link (60 s) that downloads a task's output files (tar) without credentials",
      tag: 'tasks',
      access: { kind: 'permission', permission: 'ViewJobs', scope: ({ params }) => ({ queue: params.q }) },
      params: z.object({ q: nameSchema, name: nameSchema }),
      responses: {
        201: { description: 'The link', schema: ticketSchema },
        404: { description: 'Unknown queue or task' },
      },
    },
    ({ c, params, principal }) => {
      assertQueue(ctx, params.q);
      ctx.daemon.reads.manifest(params.q, params.name); // an unknown task answers 404 now
      return issued(c, principal, { kind: 'task-outputs', queue: params.q, task: params.name });
    },
  );

  router.add(
    {
      method: 'get',
      path: '/download/:ticket',
      summary: 'What a download ticket was made for, once, within its minute',
      tag: 'jobs',
      access: { kind: 'public' },
      params: z.object({ ticket: z.string().min(1).max(100) }),
      responses: {
        200: { description: 'The file', schema: z.string(), mime: 'application/octet-stream' },
        404: { description: 'No such ticket: unknown, used, expired, or not this user' },
      },
    },
    async ({ c, params }) => {
      const ticket = tickets.redeem(params.ticket);
      // Whoever sends credentials along must be the ticket's user; a link copied elsewhere fails.
      const authorization = c.req.header('authorization');
      const caller =
        authorization === undefined
          ? undefined
          : await ctx.auth.authenticate({ header: (h) => c.req.header(h), remoteAddress: remoteAddress(c) });
      if (
        ticket === undefined ||
        ticket.address !== remoteAddress(c) ||
        (caller !== undefined && caller.name !== ticket.principal.name)
      )
        throw new BatchdError('NOT_FOUND', 'This download link is unknown, used or expired: download again');
      const { target, principal } = ticket;
      if (target.kind === 'task-outputs') {
        demand(principal, 'ViewJobs', { queue: target.queue });
        return taskArchive(ctx, c, principal, target.queue, target.task);
      }
      // The job is looked up again, and its access checked again, as GET /job/:id/outputs/:name does.
      const job = ctx.daemon.locate(target.jobId);
      if (job === undefined || !can(principal, 'ViewJobs', { queue: job.queue }))
        throw new BatchdError('UNKNOWN_JOB', `No job ${target.jobId} in any queue`, { jobId: target.jobId });
      return serveOutput(ctx, c, job, target.name);
    },
  );
}

function outputJob(ctx: ApiContext, job: JobLocation): Parameters<typeof listOutputs>[0] {
  const info = jobInfo(job, false);
  const type = ctx.daemon.config.jobType(info.type);
  return {
    dir: job.dir,
    params: info.params,
    type,
    cwd: type?.workdir === undefined ? job.dir : ctx.daemon.config.resolve(type.workdir),
  };
}

/** Run `read` on the job where the access check found it; once more where it is now if it moved. */
function withRetry<T>(ctx: ApiContext, job: JobLocation, read: (job: JobLocation) => T): T {
  for (let tries = 0; ; tries++) {
    const where = tries === 0 ? job : ctx.daemon.locate(path.basename(job.dir));
    if (where === undefined) {
      const id = path.basename(job.dir);
      throw new BatchdError('UNKNOWN_JOB', `No job ${id} in any queue`, { jobId: id });
    }
    try {
      return read(where);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT' || tries >= 4) throw error;
    }
  }
}

function notFound(jobId: string, name: string): BatchdError {
  return new BatchdError('NOT_FOUND', `Job ${jobId} has no output file ${JSON.stringify(name)}`, {
    jobId,
    file: name,
  });
}

/** `attachment`, with an ASCII fallback name and the exact one in RFC 5987 form. */
function attachment(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}
