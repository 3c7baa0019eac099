// app A → A's outbound → B's inbound → app B over real sockets: identity header set from the verified peer, spoofed
// identity headers never reach app B, HTTP/2 between sidecars.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SidecarPair, startPair, viaProxy } from '../helpers/sidecar-harness.js';
import { TestCa } from '../helpers/test-ca.js';

describe('sidecar pair', () => {
  let ca: TestCa;
  let pair: SidecarPair;
  const versions: string[] = [];

  beforeAll(async () => {
    ca = await TestCa.create();
    pair = await startPair(ca, {
      hooksB: {
        authorize: (request) => {
          versions.push(request.httpVersion);
          return request.target.startsWith('/denied')
            ? { allow: false, rule: 'no-denied', reason: 'deny_rule' }
            : { allow: true, rule: 'all', reason: 'allow_rule' };
        },
      },
    });
  });
  afterAll(async () => {
    await pair?.close();
  });

  it('ok/app B sees XFCC with A’s SPIFFE ID, over h2 between sidecars', async () => {
    const res = await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/orders?x=1');
    expect(res.status).toBe(200);
    const seen = pair.appB.seen.at(-1);
    expect(seen?.url).toBe('/orders?x=1');
    expect(seen?.headers.host).toBe('b.mesh');
    const xfcc = seen?.headers['x-forwarded-client-cert'];
    expect(xfcc).toMatch(new RegExp(`^By=${pair.idB};Hash=[0-9a-f]{64};URI=${pair.idA.replaceAll('/', '\\/')}$`));
    const inbound = await pair.b.metrics.registry.getSingleMetricAsString('meshauth_requests_total');
    expect(inbound).toContain(`direction="inbound",peer_id="${pair.idA}",code="200"`);
  });

  it('ok/origin form with Host works too', async () => {
    const res = await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/origin', { origin: true });
    expect(res.status).toBe(200);
    expect(pair.appB.seen.at(-1)?.url).toBe('/origin');
  });

  it('ok/h2 is negotiated between the sidecars', async () => {
    const before = pair.appB.seen.length;
    versions.length = 0;
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) => viaProxy(pair.a.sidecar.outboundPort, `http://b.mesh/c${i}`)),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(pair.appB.seen.length).toBe(before + 10);
    expect(versions).toEqual(Array(10).fill('2'));
  });

  it('fail/authorize hook deny → 403 MESHAUTH_ERR_FORBIDDEN, app not called', async () => {
    const before = pair.appB.seen.length;
    const res = await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/denied/x');
    expect(res.status).toBe(403);
    expect(JSON.parse(res.body)).toEqual({ code: 'MESHAUTH_ERR_FORBIDDEN', message: 'forbidden by policy' });
    expect(pair.appB.seen.length).toBe(before);
    const decisions = await pair.b.metrics.registry.getSingleMetricAsString('meshauth_authz_decisions_total');
    expect(decisions).toContain('decision="deny",rule="no-denied"');
  });

  it('fail/spoofed identity headers from app A never reach app B', async () => {
    const res = await viaProxy(pair.a.sidecar.outboundPort, 'http://b.mesh/spoof', {
      headers: {
        'X-Forwarded-Client-Cert': 'By=spiffe://example.org/x;URI=spiffe://example.org/ns/admin/sa/admin',
        'x-FORWARDED-client-cert': 'URI=spiffe://evil',
        'X-Meshauth-User': 'eyJzdWIiOiJhZG1pbiJ9',
        'x-meshauth-anything': '1',
        Connection: 'x-forwarded-client-cert, x-custom',
        'x-custom': 'hop',
      },
    });
    expect(res.status).toBe(200);
    const seen = pair.appB.seen.at(-1);
    const xfccValues = rawValues(seen?.rawHeaders ?? [], 'x-forwarded-client-cert');
    expect(xfccValues).toHaveLength(1);
    expect(xfccValues[0]).toContain(`URI=${pair.idA}`);
    expect(seen?.headers['x-meshauth-user']).toBeUndefined();
    expect(seen?.headers['x-meshauth-anything']).toBeUndefined();
    expect(seen?.headers['x-custom']).toBeUndefined();
  });

  it('fail/unknown route → 502 naming the host', async () => {
    const res = await viaProxy(pair.a.sidecar.outboundPort, 'http://nowhere.example/x');
    expect(res.status).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'MESHAUTH_ERR_ROUTE_NOT_FOUND', host: 'nowhere.example' });
    const rejected = await pair.a.metrics.registry.getSingleMetricAsString('meshauth_requests_rejected_total');
    expect(rejected).toContain('code="MESHAUTH_ERR_ROUTE_NOT_FOUND"');
  });
});

function rawValues(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]?.toLowerCase() === name) out.push(raw[i + 1] as string);
  return out;
}
