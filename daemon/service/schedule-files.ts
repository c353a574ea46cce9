import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';

import { stringify } from 'yaml';

import type { ConfigStore } from '../config/store.ts';
import { BatchdError } from '../errors.ts';
import { writeFileAtomic } from '../spool/atomic.ts';
import type { ScheduleFiles } from './port.ts';

const FOLDER = 'schedules';
const EXTENSIONS = ['yaml', 'yml', 'json'];

/** Schedules kept as files in the config folder (`schedules/<name>.yaml`); hot reload applies them. */
export class ConfigScheduleFiles implements ScheduleFiles {
  readonly #config: ConfigStore;

  constructor(config: ConfigStore) {
    this.#config = config;
  }

  fileOf(name: string): string | undefined {
    const dir = this.#config.dir;
    if (dir === undefined) return undefined;
    return EXTENSIONS.map((ext) => path.join(dir, FOLDER, `${name}.${ext}`)).find((f) => existsSync(f));
  }

  /** Refused without a config folder; the schedule given is already validated. */
  writable(): void {
    this.#folder();
  }

  create(schedule: { name: string }): void {
    const folder = this.#folder();
    mkdirSync(folder, { recursive: true });
    const file = path.join(folder, `${schedule.name}.yaml`);
    writeFileAtomic(
      file,
      `# Created through the API.\n${stringify(schedule)}`,
      this.#config.daemon.storage.fsync,
    );
    this.#config.reloadFile(file);
  }

  remove(name: string): boolean {
    const file = this.fileOf(name);
    if (file === undefined) return false;
    rmSync(file);
    this.#config.reloadFile(file);
    return true;
  }

  #folder(): string {
    const dir = this.#config.dir;
    if (dir === undefined)
      throw new BatchdError(
        'CONFLICT',
        'batchd runs without a config folder, so it cannot store schedules; start it with --config DIR',
      );
    return path.join(dir, FOLDER);
  }
}
