// A TLS 1.3 ClientHello written byte by byte, for what no real client sends: a server_name far over the 255 bytes
// OpenSSL's clients allow (tests of a server's handling of oversize SNI). Split into records of at most 16 KiB.
import { randomBytes } from 'node:crypto';

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u24(n: number): Buffer {
  return Buffer.from([(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

function extension(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), u16(data.length), data]);
}

/** The TLS records of a ClientHello (TLS 1.3, X25519, AES-GCM suites) naming `serverName` in its SNI. */
export function clientHelloRecords(serverName: string): Buffer {
  const name = Buffer.from(serverName, 'latin1');
  const extensions = Buffer.concat([
    extension(0x0000, Buffer.concat([u16(name.length + 3), Buffer.from([0]), u16(name.length), name])),
    extension(0x002b, Buffer.from([0x02, 0x03, 0x04])), // supported_versions: TLS 1.3
    extension(0x000a, Buffer.concat([u16(2), u16(0x001d)])), // supported_groups: x25519
    extension(0x000d, Buffer.concat([u16(6), u16(0x0403), u16(0x0804), u16(0x0401)])), // signature_algorithms
    extension(0x0033, Buffer.concat([u16(36), u16(0x001d), u16(32), randomBytes(32)])), // key_share
  ]);
  if (extensions.length > 0xffff) throw new Error('extensions over 64 KiB cannot be encoded');
  const body = Buffer.concat([
    Buffer.from([0x03, 0x03]),
    randomBytes(32),
    Buffer.from([32]),
    randomBytes(32),
    Buffer.concat([u16(6), u16(0x1301), u16(0x1302), u16(0x1303)]),
    Buffer.from([0x01, 0x00]),
    u16(extensions.length),
    extensions,
  ]);
  const handshake = Buffer.concat([Buffer.from([0x01]), u24(body.length), body]);
  const records: Buffer[] = [];
  for (let offset = 0; offset < handshake.length; offset += 16_384) {
    const fragment = handshake.subarray(offset, offset + 16_384);
    records.push(Buffer.from([0x16, 0x03, 0x01]), u16(fragment.length), fragment);
  }
  return Buffer.concat(records);
}
