/**
 * The part of `@linode/api-v4` this plugin uses, typed here: the package's own declarations
 * import their siblings without file extensions, which TypeScript's NodeNext resolution (ours)
 * cannot follow, so its exports arrive untyped. The shapes follow Linode's API v4 documentation.
 */
import * as linodeApi from '@linode/api-v4';

export type LinodeStatus =
  | 'booting'
  | 'cloning'
  | 'deleting'
  | 'migrating'
  | 'offline'
  | 'provisioning'
  | 'rebooting'
  | 'rebuilding'
  | 'restoring'
  | 'running'
  | 'shutting_down'
  | 'stopped';

export interface Linode {
  id: number;
  label: string;
  status: LinodeStatus;
  ipv4: string[];
  tags: string[];
}

export interface Page<T> {
  data: T[];
  page: number;
  pages: number;
  results: number;
}

export interface CreateLinodeRequest {
  label: string;
  type: string;
  region: string;
  image: string;
  root_pass: string;
  authorized_keys: string[];
  tags: string[];
  booted: boolean;
  stackscript_id?: number;
  stackscript_data?: Record<string, string>;
}

/** The axios request config an interceptor sees (axios's `InternalAxiosRequestConfig`). */
export interface RequestConfig {
  url?: string;
  headers: { set(name: string, value: string): unknown };
  signal?: AbortSignal;
}

interface LinodeApi {
  baseRequest: { interceptors: { request: { use(f: (config: RequestConfig) => RequestConfig): number } } };
  getLinodes(
    params: { page: number; page_size: number },
    filter: Record<string, string>,
  ): Promise<Page<Linode>>;
  getLinode(id: number): Promise<Linode>;
  createLinode(data: CreateLinodeRequest): Promise<Linode>;
  updateLinode(id: number, values: { tags: string[] }): Promise<Linode>;
  linodeBoot(id: number): Promise<unknown>;
  linodeShutdown(id: number): Promise<unknown>;
  deleteLinode(id: number): Promise<unknown>;
}

export const api = linodeApi as unknown as LinodeApi;
