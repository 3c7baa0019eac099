// A client that uses the outbound as an HTTPS proxy for a mesh route (`CONNECT b.mesh:443`) is refused (403, reason
// route_tls: the sidecar adds the mTLS and does not intercept TLS); the answer's body now carries the fix
// ("call it over http://") as `hint`, as the log line does. So does an allowed egress name that resolves to
// loopback (reason egress_loopback). Found in review: both bodies said only "egress to this host is not allowed",
// the hint was in the sidecar's log alone, which the client rarely sees.
import { lookup } from 'node:dns/promises';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { type SidecarPair, startPair } from '../helpers/sidecar-harness.js';
import { rawHttpExchange } from '../helpers/tcp-client.js';
import { TestCa } from '../helpers/test-ca.js';

/** The JSON body of a raw HTTP/1.1 answer. */
function bodyOf(reply: string): Record<string, unknown> {
  return JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4));
}

const LOCAL_NAME = hostname().toLowerCase();

describe('outbound: CONNECT refusals carry their hint in the answer', () => {
  let pair: SidecarPair;
  const logs = logLines('outbound', 'info');

  beforeAll(async () => {
    const ca = await TestCa.create();
    pair = await startPair(ca, { loggerA: logs.logger, egress: [`${LOCAL_NAME}:8443`] });
  });
  afterAll(async () => {
    await pair?.close();
  });

  it('fail/CONNECT to a route host on port 443 → 403 whose body says to call it over http://', async () => {
    const reply = await rawHttpExchange(
      pair.a.sidecar.outboundPort,
      'CONNECT b.mesh:443 HTTP/1.1\r\nHost: b.mesh:443\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 403 /);
    const hint = 'b.mesh is a mesh route: call it over http:// (the sidecar adds mTLS)';
    expect(bodyOf(reply)).toEqual({
      code: 'MESHAUTH_ERR_EGRESS_FORBIDDEN',
      message: 'egress to this host is not allowed',
      host: 'b.mesh',
      hint,
    });
    const [line] = logs.find({ code: 'MESHAUTH_ERR_EGRESS_FORBIDDEN', reason: 'route_tls', host: 'b.mesh' });
    expect(line?.msg).toBe(`request rejected: ${hint}`);
  });

  it('ok/CONNECT to a host that is neither a route nor egress keeps the plain 403 (nothing to hint)', async () => {
    const reply = await rawHttpExchange(
      pair.a.sidecar.outboundPort,
      'CONNECT other.mesh:80 HTTP/1.1\r\nHost: other.mesh:80\r\n\r\n',
    );
    expect(reply).toMatch(/^HTTP\/1\.1 403 /);
    expect(bodyOf(reply)).toEqual({
      code: 'MESHAUTH_ERR_EGRESS_FORBIDDEN',
      message: 'egress to this host is not allowed',
      host: 'other.mesh',
    });
  });

  it('fail/an allowed egress name that resolves to loopback → 403 whose body says so', async (context) => {
    const addresses = await lookup(LOCAL_NAME, { all: true }).catch(() => []);
    if (!addresses.some((x) => x.address.startsWith('127.') || x.address === '::1')) {
      context.skip(); // this machine's name does not resolve to loopback here
      return;
    }
    const target = `${LOCAL_NAME}:8443`;
    const reply = await rawHttpExchange(
      pair.a.sidecar.outboundPort,
      `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`,
    );
    expect(reply).toMatch(/^HTTP\/1\.1 403 /);
    const hint = `egress to ${target} is not allowed: ${LOCAL_NAME} resolves to a loopback address, and egress never reaches this machine`;
    expect(bodyOf(reply)).toMatchObject({ code: 'MESHAUTH_ERR_EGRESS_FORBIDDEN', host: LOCAL_NAME, hint });
    const [line] = logs.find({ code: 'MESHAUTH_ERR_EGRESS_FORBIDDEN', reason: 'egress_loopback' });
    expect(line?.msg).toBe(`request rejected: ${hint}`);
  });
});
