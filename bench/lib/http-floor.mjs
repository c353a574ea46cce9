#!/usr/bin/env node
// The floors under the daemon's HTTP figures. `node` and `hono` answer every GET with the same small
// JSON body, as a bare Node `http` server or as one Hono route on @hono/node-server (the framework
// the daemon's API is built on). `read` is the least an authenticated status read can do on that
// framework: check a bearer token the way any server that keeps only token hashes must (SHA-256,
// one Map lookup), `stat` the job's status file to see whether the job moved (another dispatcher
// may have moved it), and answer the job's JSON kept in memory; `read-node` does the same on a bare
// Node `http` server. Prints its port, serves until killed.
//
//   node bench/lib/http-floor.mjs node|hono
//   node bench/lib/http-floor.mjs read|read-node TOKEN STATUS_FILE BODY_FILE
import { hash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import http from 'node:http';

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
} else {
  process.stderr.write('usage: http-floor.mjs node|hono|read|read-node TOKEN STATUS_FILE BODY_FILE\n');
  process.exit(2);
}
server.once('listening', () => process.stdout.write(`${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
