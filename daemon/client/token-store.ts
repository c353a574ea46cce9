import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';

import { z } from 'zod';

import { errnoCode } from '../errors.ts';
import { configHome } from './config.ts';

/**
 * Tokens from `batch login`, one per manager URL, in ~/.config/batchd/token (mode 0600). The file
 * holds secrets: it is written by temp-then-rename with the mode set before any byte is written.
 */
const makeEntrySchema = () =>
  z.object({
    token: z.string(),
    id: z.string().optional(),
    expires_at: z.string().nullable().optional(),
  });
export type StoredToken = z.infer<ReturnType<typeof makeEntrySchema>>;
/** Built on first use: most runs have no token file to read. */
let fileSchema: z.ZodRecord<z.ZodString, ReturnType<typeof makeEntrySchema>> | undefined;

export class TokenStore {
  readonly file: string;

  constructor(file = path.join(configHome(), 'token')) {
    this.file = file;
  }

  #read(): Record<string, StoredToken> {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return {};
      throw error;
    }
    try {
      const parsed = (fileSchema ??= z.record(z.string(), makeEntrySchema())).safeParse(JSON.parse(text));
      return parsed.success ? parsed.data : {};
    } catch {
      return {}; // A damaged token file is as good as none: `batch login` rewrites it.
    }
  }

  /** The token for this server, unless it has expired. */
  get(managerUrl: string, now = Date.now()): string | undefined {
    const entry = this.entry(managerUrl);
    if (entry === undefined) return undefined;
    if (entry.expires_at != null && Date.parse(entry.expires_at) <= now) return undefined;
    return entry.token;
  }

  /** What is stored for this server, expired or not. */
  entry(managerUrl: string): StoredToken | undefined {
    return this.#read()[managerUrl];
  }

  set(managerUrl: string, entry: StoredToken): void {
    const all = this.#read();
    all[managerUrl] = entry;
    this.#write(all);
  }

  remove(managerUrl: string): boolean {
    const all = this.#read();
    if (all[managerUrl] === undefined) return false;
    delete all[managerUrl];
    this.#write(all);
    return true;
  }

  #write(all: Record<string, StoredToken>): void {
    const dir = path.dirname(this.file);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = path.join(dir, `.${path.basename(this.file)}.${process.pid}.tmp`);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(all, null, 1) + '\n');
    } finally {
      closeSync(fd);
    }
    try {
      chmodSync(tmp, 0o600); // the umask cannot widen it, but an old tmp left behind may have another mode
      renameSync(tmp, this.file);
    } catch (error) {
      try {
        unlinkSync(tmp);
      } catch {
        // Nothing left to clean up.
      }
      throw error;
    }
  }
}
