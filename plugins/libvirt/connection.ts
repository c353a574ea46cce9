import { Hypervisor } from '@unraid/libvirt';

/**
 * One libvirt connection, opened on first use (loading a controller file connects nowhere) and
 * opened again after a failed attempt. Every call goes through `hypervisor()`, so none reaches a
 * connection that was never opened (the binding crashes Node on exit when one does).
 */
export class Connection {
  readonly uri: string;
  #opening: Promise<Hypervisor> | undefined;

  constructor(uri: string) {
    this.uri = uri;
  }

  hypervisor(): Promise<Hypervisor> {
    if (this.#opening === undefined) {
      const opening = open(this.uri);
      this.#opening = opening;
      opening.catch(() => {
        if (this.#opening === opening) this.#opening = undefined;
      });
    }
    return this.#opening;
  }

  /**
   * After a failed call: a connection that no longer answers (libvirtd restarted, the SSH tunnel
   * of a remote URI dropped) is closed and forgotten, so the next use opens a new one.
   */
  async recover(): Promise<void> {
    const opening = this.#opening;
    const hypervisor = await opening?.catch(() => undefined);
    if (hypervisor === undefined) return;
    const alive = await hypervisor.connectGetHostname().then(
      () => true,
      () => false,
    );
    if (alive || this.#opening !== opening) return;
    this.#opening = undefined;
    await hypervisor.connectClose().catch(() => undefined);
  }

  async close(): Promise<void> {
    const opening = this.#opening;
    this.#opening = undefined;
    const hypervisor = await opening?.catch(() => undefined);
    await hypervisor?.connectClose();
  }
}

async function open(uri: string): Promise<Hypervisor> {
  const hypervisor = new Hypervisor({ uri });
  await hypervisor.connectOpen();
  return hypervisor;
}
