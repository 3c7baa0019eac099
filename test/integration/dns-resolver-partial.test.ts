// With `outbound.dns.servers`, a name whose A query answers while its AAAA query fails (SERVFAIL) keeps the IPv6
// endpoints it had (a lost AAAA query must not drain them) and is counted as `partial`, not `success`: before, the
// metric could not tell a resolver that lost one family from a healthy one. The DNS server is the test's own on
// 127.0.0.1: dnsmasq cannot be told to fail one query type, so it answers by hand (A with one record, AAAA SERVFAIL).
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AddressResolver } from '../../src/sidecar/endpoints/dns-resolver.js';
import { Metrics } from '../../src/telemetry/index.js';

const TYPE_A = 1;
const TYPE_AAAA = 28;
const SERVFAIL = 2;

/** The answer to one query: the question echoed, then one A record of 10.0.0.7 (TTL 30), or SERVFAIL for AAAA. */
function answer(query: Buffer): Buffer {
  let end = 12;
  while (end < query.length && query[end] !== 0) end += (query[end] as number) + 1;
  const question = query.subarray(12, end + 5); // name, its zero byte, type, class
  const type = query.readUInt16BE(end + 1);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0); // the query's id
  const recursionDesired = (query[2] as number) & 0x01;
  header.writeUInt8(0x80 | recursionDesired, 2); // a response
  header.writeUInt16BE(1, 4); // one question
  if (type !== TYPE_A) {
    header.writeUInt8(0x80 | SERVFAIL, 3); // recursion available, SERVFAIL
    return Buffer.concat([header, question]);
  }
  header.writeUInt8(0x80, 3);
  header.writeUInt16BE(1, 6); // one answer
  const record = Buffer.from([0xc0, 0x0c, 0, TYPE_A, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 7]);
  return Buffer.concat([header, question, record]);
}

describe('AddressResolver: one address family fails', () => {
  let server: Socket;
  let types: number[];

  beforeAll(async () => {
    types = [];
    server = createSocket('udp4');
    server.on('message', (query, from) => {
      let end = 12;
      while (end < query.length && query[end] !== 0) end += (query[end] as number) + 1;
      types.push(query.readUInt16BE(end + 1));
      server.send(answer(query), from.port, from.address);
    });
    await new Promise<void>((resolve) => server.bind(0, '127.0.0.1', resolve));
  });
  afterAll(() => {
    server?.close();
  });

  it('fail/A answers, AAAA SERVFAIL → the A address, IPv6 kept as it was, counted as partial', async () => {
    const metrics = new Metrics();
    const port = (server.address() as AddressInfo).port;
    const resolver = new AddressResolver([{ host: '127.0.0.1', port }], metrics);
    const resolution = await resolver.resolve('orders.shop.test');
    expect(types).toContain(TYPE_A);
    expect(types).toContain(TYPE_AAAA);
    expect(resolution.addresses).toEqual(['10.0.0.7']);
    expect(resolution.failedFamilies).toEqual([6]);
    expect(resolution.ttlSeconds).toBe(30);
    const text = await metrics.registry.getSingleMetricAsString('meshauth_dns_resolutions_total');
    expect(text).toContain('result="partial"} 1');
    expect(text).not.toContain('result="success"');
    resolver.cancel();
  });
});
