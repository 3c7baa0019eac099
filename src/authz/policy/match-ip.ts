// IPv4/IPv6 addresses and CIDR ranges for `when.sourceIps`. Pure (node:net is off limits in pure modules, and
// parsing here is strict: no leading-zero octets, no zone IDs in policy). IPv4-mapped IPv6 counts as IPv4.
export interface IpAddress {
  readonly v6: boolean;
  readonly value: bigint;
}

export interface Cidr {
  readonly v6: boolean;
  readonly network: bigint;
  readonly bits: number;
}

const V4_OCTET = /^(0|[1-9][0-9]{0,2})$/;
const V6_GROUP = /^[0-9a-fA-F]{1,4}$/;
const MAPPED_PREFIX = 0xffffn;

export function parseIp(input: string): IpAddress | undefined {
  if (input.includes(':')) {
    const zone = input.indexOf('%');
    const value = parseV6(zone === -1 ? input : input.slice(0, zone));
    if (value === undefined) return undefined;
    return value >> 32n === MAPPED_PREFIX ? { v6: false, value: value & 0xffffffffn } : { v6: true, value };
  }
  const value = parseV4(input);
  return value === undefined ? undefined : { v6: false, value };
}

/** `10.0.0.0/8`, `fd00::/8`, or a single address. Host bits must be zero (catches typos like 10.0.0.1/8). */
export function parseCidr(input: string): Cidr | string {
  const slash = input.indexOf('/');
  const addressText = slash === -1 ? input : input.slice(0, slash);
  if (addressText.includes('%')) return 'a zone ID ("%…") is not allowed';
  const address = parseIp(addressText);
  if (address === undefined) return 'expected an IPv4 or IPv6 address or CIDR range';
  const max = addressText.includes(':') ? 128 : 32;
  let bits = max;
  if (slash !== -1) {
    const bitsText = input.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(bitsText) || Number(bitsText) > max) {
      return `expected a prefix length from 0 to ${max}`;
    }
    bits = Number(bitsText);
  }
  // An IPv4-mapped range (::ffff:a.b.c.d/96+) is the IPv4 range it maps.
  if (max === 128 && !address.v6) {
    if (bits < 96) return 'an IPv4-mapped range must have a prefix length of at least 96';
    bits -= 96;
  }
  const width = address.v6 ? 128 : 32;
  if ((address.value & hostMask(width, bits)) !== 0n) {
    return 'the address has bits set after the prefix length';
  }
  return { v6: address.v6, network: address.value, bits };
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.v6 !== ip.v6) return false;
  const width = cidr.v6 ? 128 : 32;
  return (ip.value & ~hostMask(width, cidr.bits)) === cidr.network;
}

function hostMask(width: number, bits: number): bigint {
  return (1n << BigInt(width - bits)) - 1n;
}

function parseV4(input: string): bigint | undefined {
  const parts = input.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0n;
  for (const part of parts) {
    if (!V4_OCTET.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

function parseV6(input: string): bigint | undefined {
  const halves = input.split('::');
  if (halves.length > 2) return undefined;
  const head = wordsOf(halves[0] ?? '', halves.length === 1);
  const tail = halves.length === 2 ? wordsOf(halves[1] ?? '', true) : [];
  if (head === undefined || tail === undefined) return undefined;
  // "::" stands for one or more zero groups; without it there must be exactly eight.
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const words = [...head, ...new Array<number>(missing).fill(0), ...tail];
  return words.reduce((acc, word) => (acc << 16n) | BigInt(word), 0n);
}

/** 16-bit words of colon-separated groups; an embedded IPv4 address is allowed only as the very last group. */
function wordsOf(text: string, ipv4AllowedLast: boolean): number[] | undefined {
  if (text === '') return [];
  const groups = text.split(':');
  const words: number[] = [];
  for (const [index, group] of groups.entries()) {
    if (group.includes('.')) {
      const v4 = index === groups.length - 1 && ipv4AllowedLast ? parseV4(group) : undefined;
      if (v4 === undefined) return undefined;
      words.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
    } else if (V6_GROUP.test(group)) {
      words.push(Number.parseInt(group, 16));
    } else {
      return undefined;
    }
  }
  return words;
}
