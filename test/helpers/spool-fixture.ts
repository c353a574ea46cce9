import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { pino } from 'pino';
import { stringify } from 'yaml';

import { queueSettingsSchema } from '../../daemon/config/schema.ts';
import { ConfigStore } from '../../daemon/config/store.ts';
import { EventBus } from '../../daemon/events.ts';
import type { JobSpec } from '../../daemon/jobs/spec.ts';
import { JOB_STATES } from '../../daemon/jobs/status.ts';
import { validateJobText } from '../../daemon/jobs/validate.ts';
import { QUEUE_FOLDERS, SpoolLayout } from '../../daemon/spool/layout.ts';

/**
 * A spool with one queue and a `frames` job type (`echo $n`), for tests that drive the acceptance
 * code in process: drops renamed into incoming/, validated as the intake would.
 */
export interface SpoolFixture {
  root: string;
  layout: SpoolLayout;
  config: ConfigStore;
  queue: string;
  folder(name: keyof typeof QUEUE_FOLDERS): string;
  /** Validate a job file's text as a drop named `file` (tasks up to `maxTaskJobs`). */
  specsOf(text: string, file: string): JobSpec[];
  /** A drop renamed into incoming/, and what validating it gives. */
  dropFile(name: string, content: unknown): { file: string; text: string; specs: JobSpec[] };
  close(): Promise<void>;
}

export function makeSpoolFixture(prefix: string, maxTaskJobs = 100): SpoolFixture {
  const queue = 'default';
  const root = mkdtempSync(path.join(tmpdir(), prefix));
  const etc = path.join(root, 'etc');
  mkdirSync(path.join(etc, 'jobtypes'), { recursive: true });
  writeFileSync(
    path.join(etc, 'jobtypes', 'frames.yaml'),
    stringify({ template: 'echo $n', params: [{ name: 'n', type: 'Integer' }] }),
  );
  const config = new ConfigStore(etc, new EventBus(() => undefined), pino({ level: 'silent' }));
  const layout = new SpoolLayout(path.join(root, 'spool'));
  for (const f of [...Object.values(QUEUE_FOLDERS), ...JOB_STATES])
    mkdirSync(path.join(layout.queueDir(queue), f), { recursive: true });
  const folder = (name: keyof typeof QUEUE_FOLDERS): string => layout.folder(queue, name);
  const specsOf = (text: string, file: string): JobSpec[] =>
    validateJobText(text, {
      queue,
      queueSettings: queueSettingsSchema.parse({}),
      config,
      file,
      via: 'drop',
      slugSource: path.basename(file, '.yaml'),
      hostExists: () => false,
      jobExists: () => false,
      maxTaskJobs,
    });
  return {
    root,
    layout,
    config,
    queue,
    folder,
    specsOf,
    dropFile(name, content) {
      const text = stringify(content);
      const file = path.join(folder('incoming'), name);
      writeFileSync(`${file}.tmp`, text);
      renameSync(`${file}.tmp`, file);
      return { file, text, specs: specsOf(text, name) };
    },
    async close() {
      await config.close();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
