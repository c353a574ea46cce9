import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import path from 'node:path';

import { z } from 'zod';

import { BatchdError, errnoCode } from '../errors.ts';

/**
 * client.yaml: batchd's fields, plus `token`. Unknown fields are errors, so typos show. Built on
 * first use: most `batch` runs have no client.yaml to check.
 */
const makeClientFileSchema = () =>
  z
    .object({
      manager_url: z.string().optional(),
      queue: z.string().optional(),
      type: z.string().optional(),
      host: z.string().optional(),
      username: z.string().optional(),
      password: z.string().optional(),
      token: z.string().optional(),
      disable_auth: z.boolean().optional(),
      certificate: z.string().optional(),
      key: z.string().optional(),
      ca_certificate: z.string().optional(),
      disable_server_certificate_check: z.boolean().optional(),
    })
    .strict();
let clientFileSchema: ReturnType<typeof makeClientFileSchema> | undefined;
export type ClientFile = z.infer<ReturnType<typeof makeClientFileSchema>>;

/** The settings the command line, the environment and client.yaml can each give. */
export const SETTINGS = ['manager_url', 'queue', 'type', 'host', 'username', 'password', 'token'] as const;
export type Setting = (typeof SETTINGS)[number];

/** batchd's variable names, plus BATCH_TOKEN. */
export const ENV_NAMES = {
  manager_url: 'BATCH_MANAGER_URL',
  queue: 'BATCH_QUEUE',
  type: 'BATCH_TYPE',
  host: 'BATCH_HOST',
  username: 'BATCH_USERNAME',
  password: 'BATCH_PASSWORD',
  token: 'BATCH_TOKEN',
} as const satisfies Record<Setting, string>;

export type Source = 'flag' | 'env' | 'file' | 'default' | 'login';

export interface ResolvedConfig {
  manager_url: string;
  queue: string;
  /** Undefined: the queue's type, else the server's default. */
  type: string | undefined;
  /** Undefined: the type's host, else the queue's, else the daemon's machine. */
  host: string | undefined;
  username: string;
  password: string | undefined;
  token: string | undefined;
  disable_auth: boolean;
  tls: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean };
  /** Where each setting came from, for `--verbose` and for deciding between a password and a token. */
  sources: Record<Setting, Source>;
  /** The client.yaml that was read, if any. */
  file: string | undefined;
}

export const DEFAULT_MANAGER_URL = 'http://127.0.0.1:9681';

export function configHome(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  return path.join(
    xdg !== undefined && xdg !== '' ? xdg : path.join(env.HOME ?? homedir(), '.config'),
    'batchd',
  );
}

/** `--client-config FILE`, `$BATCH_CLIENT_CONFIG`, then ~/.config/batchd/client.yaml, /etc/batchd/client.yaml. */
export function locateClientFile(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): { file: string; required: boolean } | undefined {
  if (flag !== undefined) return { file: path.resolve(flag), required: true };
  const fromEnv = env.BATCH_CLIENT_CONFIG;
  if (fromEnv !== undefined && fromEnv !== '') return { file: path.resolve(fromEnv), required: true };
  for (const candidate of [path.join(configHome(env), 'client.yaml'), '/etc/batchd/client.yaml']) {
    if (existsSync(candidate)) return { file: candidate, required: false };
  }
  return undefined;
}

/** The YAML parser is loaded only when there is a file to read: it costs more start-up time than the rest of `batch`. */
export async function readClientFile(file: string, required: boolean): Promise<ClientFile> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if (!required && errnoCode(error) === 'ENOENT') return {};
    throw new BatchdError(
      'CONFIG_INVALID',
      `Cannot read the client config ${file}: ${(error as Error).message}`,
      { file },
      { cause: error },
    );
  }
  if (text.trim() === '') return {};
  const { parseText } = await import('../config/parse.ts');
  return parseText(text, (clientFileSchema ??= makeClientFileSchema()), file);
}

export interface ConfigInputs {
  flags: Partial<Record<Setting, string | undefined>> & {
    clientConfig?: string | undefined;
    disableAuth?: boolean | undefined;
  };
  env?: NodeJS.ProcessEnv;
  /** A token saved by `batch login` for the resolved manager_url. */
  storedToken?: (managerUrl: string) => string | undefined;
}

/** Precedence, as in batchd: flag > environment > client.yaml > default. */
export async function resolveConfig(inputs: ConfigInputs): Promise<ResolvedConfig> {
  const env = inputs.env ?? process.env;
  const located = locateClientFile(inputs.flags.clientConfig, env);
  const file = located === undefined ? {} : await readClientFile(located.file, located.required);
  const sources = {} as Record<Setting, Source>;
  const pick = (setting: Setting): string | undefined => {
    const flag = inputs.flags[setting];
    if (flag !== undefined && flag !== '') return ((sources[setting] = 'flag'), flag);
    const fromEnv = env[ENV_NAMES[setting]];
    if (fromEnv !== undefined && fromEnv !== '') return ((sources[setting] = 'env'), fromEnv);
    const fromFile = file[setting];
    if (fromFile !== undefined && fromFile !== '') return ((sources[setting] = 'file'), fromFile);
    sources[setting] = 'default';
    return undefined;
  };
  const managerUrl = normalizeUrl(
    pick('manager_url') ?? DEFAULT_MANAGER_URL,
    sources.manager_url,
    located?.file,
  );
  let token = pick('token');
  if (token === undefined && inputs.storedToken !== undefined) {
    token = inputs.storedToken(managerUrl);
    if (token !== undefined) sources.token = 'login';
  }
  const resolveFile = (p: string | undefined): string | undefined =>
    p === undefined
      ? undefined
      : path.resolve(located === undefined ? process.cwd() : path.dirname(located.file), p);
  const tls: ResolvedConfig['tls'] = { rejectUnauthorized: file.disable_server_certificate_check !== true };
  const ca = resolveFile(file.ca_certificate);
  const cert = resolveFile(file.certificate);
  const key = resolveFile(file.key);
  if (ca !== undefined) tls.ca = ca;
  if (cert !== undefined) tls.cert = cert;
  if (key !== undefined) tls.key = key;
  return {
    manager_url: managerUrl,
    queue: pick('queue') ?? 'default',
    type: pick('type'),
    host: pick('host'),
    username: pick('username') ?? osUser(),
    password: pick('password'),
    token,
    disable_auth: inputs.flags.disableAuth === true || file.disable_auth === true,
    tls,
    sources,
    file: located?.file,
  };
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'anonymous';
  }
}

function normalizeUrl(raw: string, source: Source | undefined, file: string | undefined): string {
  const withScheme = /^[a-z]+:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new BatchdError(
      'CONFIG_INVALID',
      `The manager URL ${JSON.stringify(raw)} (from ${describeSource(source, 'manager_url', file)}) is not a URL; expected e.g. http://127.0.0.1:9681`,
      {
        field: 'manager_url',
      },
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new BatchdError(
      'CONFIG_INVALID',
      `The manager URL must start with http:// or https://, got ${JSON.stringify(raw)}`,
      { field: 'manager_url' },
    );
  }
  return url.href.replace(/\/+$/, '');
}

export function describeSource(
  source: Source | undefined,
  setting: Setting,
  file: string | undefined,
): string {
  switch (source) {
    case 'flag':
      return 'the command line';
    case 'env':
      return `$${ENV_NAMES[setting]}`;
    case 'file':
      return file ?? 'client.yaml';
    case 'login':
      return '`batch login`';
    default:
      return 'the default';
  }
}
