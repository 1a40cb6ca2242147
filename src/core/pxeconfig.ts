/**
 * smart-proxy's pxeconfig variants (theforeman/smart-proxy modules/tftp/server.rb and tftp_api.rb), reproduced
 * exactly: the variant list, Ruby's `capitalize` matching (Foreman sends `PXELinux`, `PXEGrub2`, `ZTP`), the MAC
 * validation of lib/proxy/validations.rb, and the file names each variant writes.
 */

export const VARIANTS = ['Syslinux', 'Pxelinux', 'Pxegrub', 'Pxegrub2', 'Ztp', 'Poap', 'Ipxe'] as const;
export type Variant = (typeof VARIANTS)[number];

const MAC_48 = /^([a-f0-9]{1,2}:){5}[a-f0-9]{1,2}$/i;
// InfiniBand: 20 octets.
const MAC_64 = /^([a-f0-9]{1,2}:){19}[a-f0-9]{1,2}$/i;

/** Ruby's String#capitalize: first character upper case, the rest lower case. */
const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();

export function variantOf(raw: string): Variant | null {
  const v = capitalize(raw);
  return (VARIANTS as readonly string[]).includes(v) ? (v as Variant) : null;
}

export function validMac(mac: string): boolean {
  return MAC_48.test(mac) || MAC_64.test(mac);
}

const dashed = (mac: string) => mac.replace(/:/g, '-');
const bare = (mac: string) => mac.replace(/:/g, '').toUpperCase();

/** Files written for one host, in smart-proxy's order (GET reads the first). */
export function configFiles(variant: Variant, mac: string): string[] {
  switch (variant) {
    case 'Syslinux':
    case 'Pxelinux':
      return [`pxelinux.cfg/01-${dashed(mac).toLowerCase()}`];
    case 'Pxegrub':
      return [`grub/menu.lst.01${bare(mac)}`, `grub/01-${dashed(mac).toUpperCase()}`];
    case 'Pxegrub2':
      return [`grub2/grub.cfg-01-${dashed(mac).toLowerCase()}`, `grub2/grub.cfg-${mac.toLowerCase()}`];
    case 'Ztp':
      return [`ztp.cfg/${bare(mac)}`, `ztp.cfg/${bare(mac)}.cfg`];
    case 'Poap':
      return [`poap.cfg/${bare(mac)}`];
    case 'Ipxe':
      return [`pxelinux.cfg/01-${dashed(mac).toLowerCase()}.ipxe`];
  }
}

/** Files written by "Build PXE Default". For Ztp and Poap smart-proxy writes the directory's own name as a file. */
export function defaultFiles(variant: Variant): string[] {
  switch (variant) {
    case 'Syslinux':
    case 'Pxelinux':
      return ['pxelinux.cfg/default'];
    case 'Pxegrub':
      return ['grub/menu.lst', 'grub/efidefault'];
    case 'Pxegrub2':
      return ['grub2/grub.cfg'];
    case 'Ztp':
      return ['ztp.cfg'];
    case 'Poap':
      return ['poap.cfg'];
    case 'Ipxe':
      return ['pxelinux.cfg/default.ipxe'];
  }
}
