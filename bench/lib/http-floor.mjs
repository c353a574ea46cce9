#!/usr/bin/env node
// The floor under the daemon's HTTP figures: a server that answers every GET with the same small
// JSON body, as a bare Node `http` server (`node`) or as one Hono route on @hono/node-server
// (`hono`), the framework the daemon's API is built on. Prints its port, serves until killed.
//
//   node bench/lib/http-floor.mjs node|hono
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
} else {
  process.stderr.write('usage: http-floor.mjs node|hono\n');
  process.exit(2);
}
server.once('listening', () => process.stdout.write(`${server.address().port}\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
