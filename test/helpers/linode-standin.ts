/**
 * A STAND-IN for Linode's API v4, for contract tests only: no Linode emulator exists (TESTING.md,
 * "Linode"). It is written from Linode's public API v4 documentation (developers.linode.com,
 * "Linode Instances"), not from the client library, and serves only what batchd's provider uses:
 *
 * - `GET  /v4[beta]/linode/instances` (paginated `{data, page, pages, results}`; `?page=`,
 *   `?page_size=`; an `X-Filter` header with `{"label": …}` or `{"tags": …}`)
 * - `POST /v4[beta]/linode/instances` (create; `type` and `region` required, `root_pass` required
 *   with an `image`, labels unique; starts `provisioning`, then `booting`, then `running`)
 * - `GET|PUT|DELETE /v4[beta]/linode/instances/{id}`
 * - `POST /v4[beta]/linode/instances/{id}/boot|shutdown` (`offline` → `booting` → `running`,
 *   `running` → `shutting_down` → `offline`, each step taking its time)
 *
 * Both `/v4/` and `/v4beta/` are served, as `@linode/api-v4` uses both. Every request needs
 * `Authorization: Bearer <token>` (else 401), and errors have Linode's shape
 * `{"errors": [{"reason": "…", "field": "…"}]}`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export type StandinStatus = 'provisioning' | 'booting' | 'running' | 'shutting_down' | 'offline';

export interface StandinLinode {
  id: number;
  label: string;
  status: StandinStatus;
  type: string;
  region: string;
  image: string | null;
  ipv4: string[];
  ipv6: string;
  tags: string[];
  group: string;
  hypervisor: 'kvm';
  created: string;
  updated: string;
  specs: { disk: number; memory: number; vcpus: number; transfer: number; gpus: number };
  /** Not part of the API: what the create request carried, for the tests to check. */
  created_with?: Record<string, unknown>;
}

export interface StandinOptions {
  token: string;
  /** How long each step takes (provisioning, booting, shutting down). */
  stepMs?: number;
  /** The largest page served (Linode's is 500; smaller to exercise pagination). */
  maxPageSize?: number;
}

export interface LinodeStandin {
  /** For `base_url:` (the server's origin; the API is under `/v4/` and `/v4beta/`). */
  baseUrl: string;
  /** Every request seen: method and path (query excluded) and whether it was authorized. */
  requests: { method: string; path: string; authorized: boolean }[];
  /** The instances now, statuses brought up to date. */
  linodes(): StandinLinode[];
  byLabel(label: string): StandinLinode | undefined;
  /** Add an instance as if made outside batchd (in the Linode console). */
  add(label: string, status: 'running' | 'offline', tags?: string[]): StandinLinode;
  stop(): Promise<void>;
}

/** Plans and regions the stand-in knows (a few of Linode's documented ids). */
const TYPES: Record<string, StandinLinode['specs']> = {
  'g6-nanode-1': { disk: 25600, memory: 1024, vcpus: 1, transfer: 1000, gpus: 0 },
  'g6-standard-1': { disk: 51200, memory: 2048, vcpus: 1, transfer: 2000, gpus: 0 },
  'g6-standard-2': { disk: 81920, memory: 4096, vcpus: 2, transfer: 4000, gpus: 0 },
};
const REGIONS = new Set(['us-east', 'us-central', 'eu-west', 'eu-central', 'ap-south']);
const NEXT: Partial<Record<StandinStatus, StandinStatus>> = {
  provisioning: 'booting',
  booting: 'running',
  shutting_down: 'offline',
};

class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly errors: { reason: string; field?: string }[],
  ) {
    super(errors.map((e) => e.reason).join('; '));
  }
}

export async function startLinodeStandin(options: StandinOptions): Promise<LinodeStandin> {
  const stepMs = options.stepMs ?? 300;
  const maxPageSize = options.maxPageSize ?? 500;
  const instances = new Map<number, StandinLinode & { since: number }>();
  const requests: LinodeStandin['requests'] = [];
  let nextId = 1000;

  /** Statuses move on by themselves as time passes, one step per `stepMs`. */
  const refresh = (l: StandinLinode & { since: number }): StandinLinode => {
    for (
      let next = NEXT[l.status];
      next !== undefined && Date.now() - l.since >= stepMs;
      next = NEXT[l.status]
    ) {
      l.status = next;
      l.since += stepMs;
    }
    const { since: _since, ...shown } = l;
    return structuredClone(shown);
  };
  const make = (fields: Partial<StandinLinode> & { label: string; status: StandinStatus }): StandinLinode => {
    const id = nextId++;
    const now = new Date().toISOString().slice(0, 19);
    const linode = {
      id,
      type: 'g6-nanode-1',
      region: 'us-east',
      image: null,
      ipv4: [`203.0.113.${id % 250}`, `192.168.133.${id % 250}`],
      ipv6: `2600:3c00::f03c:91ff:fe${(id % 256).toString(16)}:1/128`,
      tags: [],
      group: '',
      hypervisor: 'kvm' as const,
      created: now,
      updated: now,
      specs: TYPES['g6-nanode-1'] as StandinLinode['specs'],
      ...fields,
      since: Date.now(),
    };
    instances.set(id, linode);
    return refresh(linode);
  };
  const find = (id: string): StandinLinode & { since: number } => {
    const linode = instances.get(Number(id));
    if (linode === undefined) throw new ApiError(404, [{ reason: 'Not found' }]);
    refresh(linode);
    return linode;
  };
  const moveTo = (l: StandinLinode & { since: number }, status: StandinStatus): void => {
    l.status = status;
    l.since = Date.now();
    l.updated = new Date().toISOString().slice(0, 19);
  };

  const list = (url: URL, filterHeader: string | undefined): unknown => {
    let filter: Record<string, unknown> = {};
    if (filterHeader !== undefined) {
      try {
        filter = JSON.parse(filterHeader) as Record<string, unknown>;
      } catch {
        throw new ApiError(400, [{ reason: 'Cannot parse filter' }]);
      }
    }
    const all = [...instances.values()].map(refresh).filter((l) =>
      Object.entries(filter).every(([key, value]) => {
        // Linode's filter on a list field matches an item of it.
        if (key === 'tags') return l.tags.includes(String(value));
        if (key === 'label') return l.label === value;
        throw new ApiError(400, [{ reason: `Cannot filter on ${key}`, field: 'X-Filter' }]);
      }),
    );
    const pageSize = Math.min(Number(url.searchParams.get('page_size') ?? 100), maxPageSize);
    const pages = Math.max(1, Math.ceil(all.length / pageSize));
    const page = Number(url.searchParams.get('page') ?? 1);
    if (!Number.isInteger(page) || page < 1 || page > pages)
      throw new ApiError(400, [{ reason: 'Invalid page', field: 'page' }]);
    return { data: all.slice((page - 1) * pageSize, page * pageSize), page, pages, results: all.length };
  };

  const create = (body: Record<string, unknown>): unknown => {
    const errors: { reason: string; field?: string }[] = [];
    const type = body.type;
    const region = body.region;
    if (typeof type !== 'string') errors.push({ reason: 'type is required', field: 'type' });
    else if (TYPES[type] === undefined)
      errors.push({ reason: 'A valid plan type by that ID was not found', field: 'type' });
    if (typeof region !== 'string') errors.push({ reason: 'region is required', field: 'region' });
    else if (!REGIONS.has(region)) errors.push({ reason: 'region is not valid', field: 'region' });
    if (body.image !== undefined && typeof body.root_pass !== 'string')
      errors.push({ reason: 'root_pass is required when deploying an image', field: 'root_pass' });
    const label = typeof body.label === 'string' ? body.label : `linode${nextId}`;
    if (!/^[a-zA-Z0-9][a-zA-Z0-9._-]{1,62}[a-zA-Z0-9]$/.test(label))
      errors.push({
        reason: 'Label must be 3-64 characters of letters, digits, ".", "_" and "-"',
        field: 'label',
      });
    if ([...instances.values()].some((l) => l.label === label))
      errors.push({ reason: 'Label must be unique among your Linodes', field: 'label' });
    const tags = Array.isArray(body.tags) ? body.tags.map(String) : [];
    for (const tag of tags)
      if (tag.length < 3 || tag.length > 50)
        errors.push({ reason: 'Length must be 3-50 characters', field: 'tags' });
    if (errors.length > 0) throw new ApiError(400, errors);
    const booted = body.booted !== false && body.image !== undefined;
    return make({
      label,
      status: booted ? 'provisioning' : 'offline',
      type: type as string,
      region: region as string,
      image: typeof body.image === 'string' ? body.image : null,
      tags,
      specs: TYPES[type as string],
      created_with: body,
    });
  };

  const route = (
    method: string,
    url: URL,
    body: Record<string, unknown>,
    filter: string | undefined,
  ): unknown => {
    const match = /^\/v4(?:beta)?\/linode\/instances(?:\/(\d+))?(?:\/(boot|shutdown))?\/?$/.exec(
      url.pathname,
    );
    if (match === null) throw new ApiError(404, [{ reason: 'Not found' }]);
    const [, id, action] = match;
    if (id === undefined) {
      if (method === 'GET') return list(url, filter);
      if (method === 'POST') return create(body);
    } else if (action === undefined) {
      const linode = find(id);
      if (method === 'GET') return refresh(linode);
      if (method === 'PUT') {
        if (typeof body.label === 'string') linode.label = body.label;
        if (Array.isArray(body.tags)) linode.tags = body.tags.map(String);
        return refresh(linode);
      }
      if (method === 'DELETE') {
        instances.delete(linode.id);
        return {};
      }
    } else if (method === 'POST') {
      const linode = find(id);
      if (action === 'boot') {
        if (linode.status === 'offline') moveTo(linode, 'booting');
        else if (linode.status !== 'running' && linode.status !== 'booting')
          throw new ApiError(400, [{ reason: `Linode busy (${linode.status})` }]);
        return {};
      }
      if (linode.status === 'running' || linode.status === 'booting') moveTo(linode, 'shutting_down');
      return {};
    }
    throw new ApiError(405, [{ reason: 'Method not allowed' }]);
  };

  const handle = (req: IncomingMessage, res: ServerResponse, raw: string): void => {
    const url = new URL(req.url ?? '/', 'http://standin');
    const authorized = req.headers.authorization === `Bearer ${options.token}`;
    requests.push({ method: req.method ?? '', path: url.pathname, authorized });
    const send = (status: number, payload: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    };
    try {
      if (!authorized) throw new ApiError(401, [{ reason: 'Invalid Token' }]);
      let body: Record<string, unknown> = {};
      if (raw !== '') {
        try {
          body = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          throw new ApiError(400, [{ reason: 'Invalid JSON' }]);
        }
      }
      const filter = req.headers['x-filter'];
      send(200, route(req.method ?? 'GET', url, body, Array.isArray(filter) ? filter[0] : filter));
    } catch (error) {
      if (error instanceof ApiError) send(error.status, { errors: error.errors });
      else send(500, { errors: [{ reason: 'Internal error' }] });
    }
  };

  const server: Server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (raw += chunk));
    req.on('end', () => handle(req, res, raw));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;

  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    linodes: () => [...instances.values()].map(refresh),
    byLabel: (label) => {
      const found = [...instances.values()].find((l) => l.label === label);
      return found === undefined ? undefined : refresh(found);
    },
    add: (label, status, tags = []) => make({ label, status, tags }),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
