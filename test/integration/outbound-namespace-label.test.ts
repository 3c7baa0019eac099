// A pattern route whose expected IDs use `{namespace}` (filled from the called host's second label,
// `<service>.<namespace>[.svc…]`) and a host that gives no such label: the call is refused at once, 502
// MESHAUTH_ERR_ROUTE_NOT_FOUND (reason `no_namespace`), with a body `hint` and a log line that name the missing
// namespace label, and no DNS lookup or connection to a peer. Found in review: the outbound still opened mTLS to the
// peer and answered 502 MESHAUTH_ERR_PEER_IDENTITY ("peer presented …, not an ID the route allows"), or for a name
// without a DNS record 503 PEER_UNAVAILABLE with DNS retries after it; neither said the host lacked the label.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines } from '../helpers/log-lines.js';
import { type SidecarPair, startPair, type TestApp, type TestSidecar, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

describe('outbound: {namespace} route and a host without a namespace label', () => {
  let pair: SidecarPair;
  let app: TestApp;
  let a: TestSidecar;
  const logs = logLines('outbound', 'debug');

  beforeAll(async () => {
    pair = await startPair(await TestCa.create(), {
      loggerA: logs.logger,
      // `*` matches one-label hosts (no namespace label); `*.*` two-label ones, whose second label is the namespace.
      routeKeys: ['*', '*.*'],
      routeIds: ['spiffe://example.org/ns/{namespace}/sa/*'],
    });
    ({ a, appB: app } = pair);
  });
  afterAll(async () => {
    await pair?.close();
  });

  async function rejected(code: string): Promise<number> {
    const { values } = await a.metrics.requestsRejected.get();
    return values.find((v) => v.labels.direction === 'outbound' && v.labels.code === code)?.value ?? 0;
  }

  it('ok/a host with a namespace label reaches the peer of that namespace', async () => {
    const res = await viaProxy(a.sidecar.outboundPort, 'http://orders.shop/x');
    expect(res.status).toBe(200);
  });

  // A `*` is one DNS label and the outbound refuses a label ending in a hyphen as no host name (host-ip-spellings
  // test), so a second label that is no DNS label (`orders.shop-`) no longer reaches `*.*` and its {namespace}.
  it('fail/a second label that is no DNS label is no host name → 400 before any route, no peer contacted', async () => {
    const seen = app.seen.length;
    const res = await viaProxy(a.sidecar.outboundPort, 'http://orders.shop-/x');
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'MESHAUTH_ERR_BAD_REQUEST' });
    expect(logs.lines.filter((l) => l.msg === 'endpoint set created' && l.address === 'orders.shop-:15006')).toEqual(
      [],
    );
    expect(app.seen.length).toBe(seen);
  });

  it.each([['a one-label host', 'solo']])(
    'fail/%s → 502 ROUTE_NOT_FOUND naming the missing namespace label, no peer contacted',
    async (_name, host) => {
      const before = await rejected('MESHAUTH_ERR_ROUTE_NOT_FOUND');
      const seen = app.seen.length;
      const res = await viaProxy(a.sidecar.outboundPort, `http://${host}/x`);
      expect(res.status).toBe(502);
      const body = JSON.parse(res.body);
      expect(body).toMatchObject({ code: 'MESHAUTH_ERR_ROUTE_NOT_FOUND', message: 'no route for this host', host });
      expect(body.hint).toContain('no namespace label');
      expect(body.hint).toContain('{namespace}');
      const [line] = logs.find({ code: 'MESHAUTH_ERR_ROUTE_NOT_FOUND', reason: 'no_namespace', host });
      expect(line?.msg).toMatch(/no namespace label .*\{namespace\}/);
      expect(await rejected('MESHAUTH_ERR_ROUTE_NOT_FOUND')).toBe(before + 1);
      // Refused before an endpoint set (DNS, connection) was made for the host.
      expect(logs.lines.filter((l) => l.msg === 'endpoint set created' && l.address === `${host}:15006`)).toEqual([]);
      expect(
        logs.lines.filter((l) => l.msg === 'endpoint set created' && (l.route === '*' || l.route === '*.*')),
      ).toHaveLength(1); // orders.shop's, from the ok case
      expect(app.seen.length).toBe(seen);
    },
  );
});
