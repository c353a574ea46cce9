import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';

import { freePort } from '../ssh/sshd.ts';

/** Dummy keys: moto accepts any, and tests must never need real ones. */
export const MOTO_CREDENTIALS = { accessKeyId: 'AKIATESTMOTO', secretAccessKey: 'moto-secret-not-real' };

/** A private moto_server (the EC2 emulator, TESTING.md "EC2") on loopback for one test file. */
export interface Moto {
  endpoint: string;
  /** A client of the emulator in `region`, for a test to set up and check instances itself. */
  client(region?: string): EC2Client;
  /** Forget every resource (between tests). */
  reset(): Promise<void>;
  /** The AMI moto preloads first, for RunInstances. */
  imageId(): Promise<string>;
  /** Record the requests moto receives from now on (moto's recorder). */
  record(): Promise<void>;
  /** The `Authorization` headers of the requests recorded since `record()`. */
  recordedAuthorizations(): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startMoto(): Promise<Moto> {
  // A missing emulator fails the EC2 tests instead of skipping them (the machine image ships it).
  try {
    execFileSync('sh', ['-c', 'command -v moto_server'], { stdio: 'ignore' });
  } catch {
    throw new Error('moto_server is not on the PATH: the machine image ships moto 5 (TESTING.md, "EC2")');
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'batchd-moto-'));
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const logFile = path.join(dir, 'moto.log');
  const child: ChildProcess = spawn(
    'sh',
    ['-c', `exec moto_server -H 127.0.0.1 -p ${port} >"$0" 2>&1`, logFile],
    // Its own folder as the working directory: moto writes a `moto_recording` file there.
    { stdio: 'ignore', cwd: dir },
  );
  child.once('error', () => undefined);
  const post = async (what: string): Promise<Response> => {
    const response = await fetch(`${endpoint}/moto-api/${what}`, { method: 'POST' });
    if (!response.ok) throw new Error(`moto ${what}: HTTP ${response.status}`);
    return response;
  };

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`moto_server exited at start: ${readFileSync(logFile, 'utf8')}`);
    try {
      await post('reset');
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`moto_server did not answer on ${endpoint} within 30 s`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  const clients: EC2Client[] = [];
  let image: string | undefined;
  const client = (region = 'us-east-1'): EC2Client => {
    const made = new EC2Client({ region, endpoint, credentials: MOTO_CREDENTIALS });
    clients.push(made);
    return made;
  };
  return {
    endpoint,
    client,
    async reset() {
      await post('reset');
    },
    async imageId() {
      // Listing all of moto's ~1,200 preloaded AMIs takes seconds: ask for a few by name, once
      // (they survive a reset unchanged).
      if (image === undefined) {
        const images = await client().send(
          new DescribeImagesCommand({
            Owners: ['amazon'],
            Filters: [{ Name: 'name', Values: ['amzn2-ami-hvm-*'] }],
          }),
        );
        image = images.Images?.find((i) => i.ImageId !== undefined)?.ImageId;
        if (image === undefined) throw new Error('moto has no preloaded Amazon Linux 2 AMI');
      }
      return image;
    },
    async record() {
      await post('recorder/reset-recording');
      await post('recorder/start-recording');
    },
    async recordedAuthorizations() {
      await post('recorder/stop-recording');
      const text = await (await fetch(`${endpoint}/moto-api/recorder/download-recording`)).text();
      return text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map(
          (line) => (JSON.parse(line) as { headers?: Record<string, string> }).headers?.Authorization ?? '',
        );
    },
    async stop() {
      for (const client of clients) client.destroy();
      // exec: the shell became moto_server, so its pid is the server's.
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        const pid = child.pid;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        process.kill(pid, 'SIGTERM');
        // A busy server may take its time over SIGTERM.
        const kill = setTimeout(() => process.kill(pid, 'SIGKILL'), 5_000);
        await exited;
        clearTimeout(kill);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
