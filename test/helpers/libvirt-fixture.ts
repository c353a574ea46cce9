import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { Hypervisor } from '@unraid/libvirt';

/** libvirt's state numbers (`virDomainState`), as the test driver's `<test:runstate>` takes them. */
const RUNSTATE = { running: 1, paused: 3, shutoff: 5, crashed: 6 } as const;
const METADATA_NS = 'urn:batchd:libvirt:1';

export interface FixtureDomain {
  name: string;
  state: keyof typeof RUNSTATE;
  /** batchd's metadata element's attributes (spool, host, created), as a crashed daemon left them. */
  batchd?: Record<string, string>;
  /** Give it a network interface (the test driver reports 192.168.0.1 for it). */
  nic?: boolean;
  /** Another application's elements in its `<metadata>` (virt-install writes libosinfo's). */
  otherMetadata?: string;
}

/**
 * Write a node XML for libvirt's test driver and return its `test:///<abs path>` URI. Each
 * connection opened on that URI starts from the file as written (the state of one connection is
 * not seen by another, nor by `virsh` in another process), unlike `test:///default`.
 */
export function writeNodeXml(dir: string, file: string, domains: FixtureDomain[]): string {
  const xml = ['<node>', ...domains.map(domainXml), '</node>', ''].join('\n');
  const full = path.join(dir, file);
  writeFileSync(full, xml);
  return `test://${full}`;
}

/** A domain XML file without state, as a host's `template` would be. */
export function domainTemplate(name = 'template-name'): string {
  return `<domain type='test'>
  <name>${name}</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <memory>65536</memory>
  <os><type>hvm</type></os>
</domain>
`;
}

/** A domain XML to define (no uuid: libvirt gives each its own), optionally with batchd's mark. */
export function definableDomain(name: string, batchd?: Record<string, string>): string {
  return domainTemplate(name)
    .replace(/ *<uuid>.*<\/uuid>\n/, '')
    .replace('</domain>', `${metadataXml(batchd)}</domain>`);
}

function metadataXml(batchd: Record<string, string> | undefined, other = ''): string {
  if (batchd === undefined && other === '') return '';
  const attributes = Object.entries(batchd ?? {}).map(([k, v]) => ` ${k}='${v}'`);
  const ours =
    batchd === undefined ? '' : `<batchd:owner xmlns:batchd='${METADATA_NS}'${attributes.join('')}/>`;
  return `<metadata>${other}${ours}</metadata>`;
}

function domainXml(d: FixtureDomain): string {
  const metadata = metadataXml(d.batchd, d.otherMetadata);
  const nic = d.nic === true ? "<devices><interface type='ethernet'/></devices>" : '';
  return `  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>${d.name}</name>
    ${metadata}
    <memory>65536</memory>
    <os><type>hvm</type></os>
    ${nic}
    <test:runstate>${RUNSTATE[d.state]}</test:runstate>
  </domain>`;
}

/**
 * libvirtd (apt libvirt-daemon) run as `nobody` in session mode, in a folder of its own: its
 * `test:///default` driver lives in the libvirtd process, so what one batchd process did to a
 * domain is still there for the next one — as long as one connection stays open (the driver's
 * state is dropped with its last connection), which this helper holds until `stop`.
 */
export class Libvirtd {
  /** `test+unix:///default?socket=…`: the daemon's in-process test driver, reached over its socket. */
  readonly uri: string;
  readonly #dir: string;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #holder: Hypervisor | undefined;
  #log = '';

  private constructor(dir: string) {
    this.#dir = dir;
    this.uri = `test+unix:///default?socket=${path.join(dir, 'run', 'libvirt', 'libvirt-sock')}`;
  }

  static async start(): Promise<Libvirtd> {
    if (!existsSync(LIBVIRTD))
      throw new Error(`${LIBVIRTD} is missing: apt-get install --no-install-recommends libvirt-daemon`);
    const dir = mkdtempSync(path.join(tmpdir(), 'batchd-libvirtd-'));
    chmodSync(dir, 0o755);
    for (const folder of [dir, ...FOLDERS.map((f) => path.join(dir, f))]) {
      mkdirSync(folder, { recursive: true });
      chownSync(folder, NOBODY, NOBODY);
    }
    const libvirtd = new Libvirtd(dir);
    try {
      await libvirtd.#run();
    } catch (error) {
      await libvirtd.stop();
      throw error;
    }
    return libvirtd;
  }

  /** Define a domain (and start it) through the connection that keeps the state alive. */
  async define(xml: string, start: boolean): Promise<void> {
    if (this.#holder === undefined) throw new Error('libvirtd is not running');
    const domain = await this.#holder.domainDefineXML(xml);
    if (start) await domain.create();
  }

  /** Stop libvirtd and start it again on the same socket: its test driver starts afresh. */
  async restart(): Promise<void> {
    await this.#halt();
    await this.#run();
  }

  async stop(): Promise<void> {
    await this.#halt();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  async #run(): Promise<void> {
    const [run = '', config = '', cache = '', home = ''] = FOLDERS.map((f) => path.join(this.#dir, f));
    const child = spawn(
      'setpriv',
      [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', LIBVIRTD, '--timeout', '0'],
      {
        env: {
          PATH: '/usr/sbin:/usr/bin:/bin',
          HOME: home,
          XDG_RUNTIME_DIR: run,
          XDG_CONFIG_HOME: config,
          XDG_CACHE_HOME: cache,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    this.#child = child;
    this.#exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stderr?.on('data', (d: Buffer) => (this.#log += d.toString()));
    const deadline = Date.now() + 15_000;
    for (;;) {
      const attempt = new Hypervisor({ uri: this.uri });
      const opened = await attempt.connectOpen().then(
        () => true,
        () => false,
      );
      if (opened) {
        this.#holder = attempt;
        return;
      }
      if (child.exitCode !== null || Date.now() > deadline)
        throw new Error(`libvirtd did not accept connections on ${this.uri}: ${this.#log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async #halt(): Promise<void> {
    await this.#holder?.connectClose().catch(() => undefined);
    this.#holder = undefined;
    const child = this.#child;
    if (child === undefined || child.exitCode !== null) return;
    child.kill('SIGTERM');
    const late = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await this.#exited;
    clearTimeout(late);
  }
}

const LIBVIRTD = '/usr/sbin/libvirtd';
const FOLDERS = ['run', 'config', 'cache', 'home'];
/** `nobody`/`nogroup` on Debian. */
const NOBODY = 65534;
