#!/usr/bin/env node
// The floors under the daemon's HTTP figures. `node` and `hono` answer every GET with the same small
// JSON body, as a bare Node `http` server or as one Hono route on @hono/node-server (the framework
// the daemon's API is built on). `read` is the least an authenticated status read can do on that
// framework: check a bearer token the way any server that keeps only token hashes must (SHA-256,
// one Map lookup), `stat` the job's status file to see whether the job moved (another dispatcher
// may have moved it), and answer the job's JSON kept in memory; `read-node` does the same on a bare
// Node `http` server. `submit-node` is the least a durable submission can do on a bare Node `http`
// server with batchd's spool layout and its acceptance journal: check the bearer token, make the
// job's folder (a staging folder with `job.yaml`, `state.yaml` and the request's bytes, renamed into
// `queued/`, the daemon's own files of one job as templates), append one line per job to a journal
// file and `fdatasync` it once per batch (one batch at a time, as the daemon's group commit), then
// answer 201. `submit-deferred` is the other order a journal allows: append and `fdatasync` first,
// answer, and only then make the folder, through Node's thread pool, off the main thread; to stay
// sustainable it lets at most 64 folders lag behind their answers (further submissions wait).
// Prints its port, serves until killed.
//
//   node bench/lib/http-floor.mjs node|hono
//   node bench/lib/http-floor.mjs read|read-node TOKEN STATUS_FILE BODY_FILE
//   node bench/lib/http-floor.mjs submit-node|submit-deferred TOKEN JOB_DIR SPOOL_DIR
import { hash } from 'node:crypto';
import {
  fdatasync,
  mkdir,
  mkdirSync,
  openSync,
  readFileSync,
  rename,
  renameSync,
  statSync,
  write,
  writeFile,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { serve } from '@hono/node-server';
import { Hono } from 'hono';

const BODY = {
  id: '20261121T000000.000Z-abcdef-floor',
  queue: 'default',
  type: 'command',
  status: 'queued',
  params: { command: 'true' },
  attempts: 0,
};

const kind = process.argv[2];
let server;
if (kind === 'node') {
  const text = JSON.stringify(BODY);
  server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(text);
  });
  server.listen(0, '127.0.0.1');
} else if (kind === 'hono') {
  const app = new Hono();
  app.get('/job/:id', (c) => c.json(BODY));
  server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
} else if ((kind === 'read' || kind === 'read-node') && process.argv.length === 6) {
  const [token, statusFile, bodyFile] = process.argv.slice(3);
  const sha256 = (text) => hash('sha256', text, 'hex'); // as the daemon hashes tokens
  const tokens = new Map([[sha256(token), { name: 'bench' }]]);
  const body = JSON.parse(readFileSync(bodyFile, 'utf8'));
  /** The least work: true when the token is good and the job's file is there. */
  const check = (header, id) => {
    const who = header?.startsWith('Bearer ') ? tokens.get(sha256(header.slice(7))) : undefined;
    if (who === undefined) return false;
    statSync(statusFile.replace('{id}', id));
    return true;
  };
  if (kind === 'read') {
    const app = new Hono();
    app.get('/job/:id', (c) =>
      check(c.req.header('authorization'), c.req.param('id'))
        ? c.json(body)
        : c.json({ error: { code: 'UNAUTHENTICATED' } }, 401),
    );
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  } else {
    server = http.createServer((req, res) => {
      const ok = check(req.headers.authorization, (req.url ?? '').slice('/job/'.length));
      const text = JSON.stringify(ok ? body : { error: { code: 'UNAUTHENTICATED' } });
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(text);
    });
    server.listen(0, '127.0.0.1');
  }
} else if ((kind === 'submit-node' || kind === 'submit-deferred') && process.argv.length === 6) {
  const [token, jobDir, spool] = process.argv.slice(3);
  server = submitFloor(token, jobDir, spool, kind === 'submit-deferred');
} else {
  process.stderr.write(
    'usage: http-floor.mjs node|hono | read|read-node TOKEN STATUS_FILE BODY_FILE | submit-node|submit-deferred TOKEN JOB_DIR SPOOL_DIR\n',
  );
  process.exit(2);
}
server.once('listening', () => process.stdout.write(`${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));

/** `deferred`: answer once the journal holds the job, and make its folder afterwards. */
function submitFloor(token, jobDir, spool, deferred) {
  const LAG = 64; // folders allowed to lag behind their answers (deferred)
  const tokens = new Map([[hash('sha256', token, 'hex'), { name: 'bench' }]]);
  const templateId = path.basename(jobDir);
  const templates = ['job.yaml', 'state.yaml'].map((f) => [f, readFileSync(path.join(jobDir, f), 'utf8')]);
  for (const f of ['staging', 'queued']) mkdirSync(path.join(spool, f), { recursive: true });
  const journal = openSync(path.join(spool, 'journal.jsonl'), 'a');
  let seq = 0;
  let waiting = [];
  let flushing = false;
  let lagging = 0;
  const held = [];
  /** Deferred: whether one more job may go on without its folder (those journaling count too). */
  const room = () => lagging + waiting.length < LAG;
  const answer = (b) => {
    b.res.writeHead(201, { 'content-type': 'application/json' });
    b.res.end(JSON.stringify({ jobs: [b.id] }));
  };
  const admit = (b) => {
    waiting.push(b);
    if (!flushing) {
      flushing = true;
      setImmediate(flush);
    }
  };
  /** The folder through the thread pool: staging folder, its files at once, then the rename. */
  const makeFolder = (b) => {
    const staged = path.join(spool, 'staging', b.id);
    mkdir(staged, (error) => {
      if (error) throw error;
      const entries = Object.entries(b.files);
      let left = entries.length;
      for (const [f, text] of entries)
        writeFile(path.join(staged, f), text, (error2) => {
          if (error2) throw error2;
          if (--left > 0) return;
          rename(staged, path.join(spool, 'queued', b.id), (error3) => {
            if (error3) throw error3;
            lagging--;
            while (room() && held.length > 0) admit(held.shift());
          });
        });
    });
  };
  const flush = () => {
    const batch = waiting;
    waiting = [];
    if (batch.length === 0) {
      flushing = false;
      return;
    }
    flushing = true;
    const text = batch.map((b) => JSON.stringify({ id: b.id, files: b.files })).join('\n') + '\n';
    write(journal, text, (error) => {
      if (error) throw error;
      fdatasync(journal, (error2) => {
        if (error2) throw error2;
        for (const b of batch) {
          answer(b);
          if (deferred) {
            lagging++;
            makeFolder(b);
          }
        }
        flush();
      });
    });
  };
  return http
    .createServer((req, res) => {
      const header = req.headers.authorization;
      const who = header?.startsWith('Bearer ')
        ? tokens.get(hash('sha256', header.slice(7), 'hex'))
        : undefined;
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        if (who === undefined || req.method !== 'POST') {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end('{"error":{"code":"UNAUTHENTICATED"}}');
          return;
        }
        const body = Buffer.concat(chunks).toString('utf8');
        const id = `${templateId}-${process.pid}-${seq++}`;
        const files = Object.fromEntries([
          ...templates.map(([f, text]) => [f, text.replaceAll(templateId, id)]),
          ['drop.json', body],
        ]);
        const b = { id, res, files };
        if (deferred) {
          if (room()) admit(b);
          else held.push(b);
          return;
        }
        const staged = path.join(spool, 'staging', id);
        mkdirSync(staged);
        for (const [f, text] of Object.entries(files)) writeFileSync(path.join(staged, f), text);
        renameSync(staged, path.join(spool, 'queued', id));
        admit(b);
      });
    })
    .listen(0, '127.0.0.1');
}
