import { z } from '../../daemon/plugins/api.ts';

/** Where `virsh domifaddr` looks for a domain's address (its `--source`). */
export const ADDRESS_SOURCES = ['lease', 'agent', 'arp'] as const;

const seconds = z.number().min(0, 'Expected a number of seconds ≥ 0');

/** `etc/controllers/<name>.yaml` (batchd's `connection_string`, and this plugin's own fields). */
export const libvirtConfig = z
  .object({
    connection_string: z.string().min(1).default('qemu:///system'),
    /** How long `stop` waits for a graceful shutdown before it destroys (powers off) the domain. */
    stop_timeout: seconds.default(120),
    /**
     * SSH to the host file's `host_name` only (an error when it has none). Otherwise the host
     * file's `host_name` when it has one, else the domain's interface address.
     */
    use_host_name: z.boolean().default(false),
    address_sources: z.array(z.enum(ADDRESS_SOURCES)).min(1).default(['lease', 'agent']),
    /** How long `locate` waits for the domain to report an address (a guest's DHCP takes a while). */
    address_timeout: seconds.default(60),
    virsh: z.string().min(1).default('virsh'),
  })
  .strict();
export type LibvirtConfig = z.infer<typeof libvirtConfig>;

/** The host file's `libvirt:` block (or the block named after its controller). */
export const libvirtHost = z
  .object({
    /** A domain XML file (relative to the config folder): batchd defines the domain, and removes it on stop. */
    template: z.string().min(1).optional(),
  })
  .strict();
export type LibvirtHost = z.infer<typeof libvirtHost>;
