// An allowed egress name that resolves to a link-local or multicast address (the cloud metadata service) is refused
// with 403 reason egress_link_local, its hint in the body and the log line, before any connection: a wildcard entry
// over a zone someone else runs, or a record changed later, must not lead a tunnel to 169.254.169.254. The outbound's
// lookup is answered by the test (no query leaves the machine, and the refusal comes before any connect).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { type SidecarPair, startPair } from '../helpers/sidecar-harness.js';
import { rawHttpExchange } from '../helpers/tcp-client.js';
import { TestCa } from '../helpers/test-ca.js';

const ANSWERS: Readonly<Record<string, string>> = {
  'metadata.egress.test': '169.254.169.254',
  'mapped.egress.test': '::ffff:169.254.169.254',
  'mdns.egress.test': '224.0.0.251',
};

vi.mock('node:dns', async (original) => {
  const dns = await original<typeof import('node:dns')>();
  const lookup = ((host: string, options: unknown, callback: (...args: unknown[]) => void) => {
    const address = ANSWERS[host];
    return address === undefined
      ? (dns.lookup as (...args: unknown[]) => void)(host, options, callback)
      : callback(null, [{ address, family: address.includes(':') ? 6 : 4 }]);
  }) as typeof dns.lookup;
  return { ...dns, default: { ...dns, lookup }, lookup };
});

describe('outbound: egress to a name that resolves to a link-local or multicast address', () => {
  let pair: SidecarPair;
  const logs = logLines('outbound', 'info');

  beforeAll(async () => {
    const ca = await TestCa.create();
    pair = await startPair(ca, { loggerA: logs.logger, egress: Object.keys(ANSWERS).map((h) => `${h}:80`) });
  });
  afterAll(async () => {
    await pair?.close();
  });

  it.each(Object.keys(ANSWERS))('fail/%s → 403 egress_link_local with its hint', async (host) => {
    const target = `${host}:80`;
    const reply = await rawHttpExchange(
      pair.a.sidecar.outboundPort,
      `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 403 /);
    const hint = `egress to ${target} is not allowed: ${host} resolves to a link-local or multicast address (where the cloud metadata service lives), which egress to a name never reaches`;
    expect(JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4))).toMatchObject({
      code: 'MESHAUTH_ERR_EGRESS_FORBIDDEN',
      host,
      hint,
    });
    const [line] = logs.find({ code: 'MESHAUTH_ERR_EGRESS_FORBIDDEN', reason: 'egress_link_local', host });
    expect(line?.msg).toBe(`request rejected: ${hint}`);
  });
});
