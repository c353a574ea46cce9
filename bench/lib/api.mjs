// The daemon's HTTP API as the bench sees it: whether it is there, and a free loopback port.
import net from 'node:net';

/**
 * Whether the daemon serves the HTTP API (it may start listening just after "ready": asked again
 * for up to `waitMs`), and the path that lists a queue's jobs.
 */
export async function probeApi(port, waitMs = 3000) {
  const until = Date.now() + waitMs;
  let why;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/openapi.json`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) {
        const doc = await res.json();
        const paths = Object.keys(doc.paths ?? {});
        const listPath = paths.find(
          (p) => /^\/queues?\/\{[^}]+\}\/jobs$/.test(p) && doc.paths[p].get !== undefined,
        );
        return {
          doc,
          listPath: listPath?.replace(/\{[^}]+\}/, '{queue}'),
          why: listPath === undefined ? 'no GET /queue/{queue}/jobs in /openapi.json' : undefined,
        };
      }
      why = `GET /openapi.json: HTTP ${res.status}`;
    } catch (error) {
      why = `GET /openapi.json: ${error.cause?.code ?? error.message}`;
    }
    if (Date.now() > until) return { why };
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
