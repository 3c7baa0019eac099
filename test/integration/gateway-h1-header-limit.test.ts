// limits.maxHeaderBytes bounds the request head on HTTP/1.1 as on HTTP/2, at any configured value. On Node 20,
// node:http2's server with allowHTTP1 does not hand its maxHeaderSize option to the HTTP/1.1 parser, which then used
// Node's default (16 KiB): a configured 8 KiB let 16 KiB heads through, a configured 32 KiB refused heads past 16 KiB
// (found by an outside review of the session cookie's size). Node 24 passes the option on. The field count is bounded
// too (header_count).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ScriptedBrowser } from '../helpers/browser.js';
import { type GatewayMesh, startGatewayMesh } from '../helpers/gateway-mesh.js';

async function statusWithHeader(mesh: GatewayMesh, bytes: number): Promise<{ status: number; code?: string }> {
  const browser = new ScriptedBrowser(mesh.ca.rootPem);
  try {
    const page = await browser.fetch(`${mesh.origin}/shop`, { headers: { 'x-big': 'a'.repeat(bytes) } });
    return page.status === 431 ? { status: 431, code: JSON.parse(page.body).code } : { status: page.status };
  } finally {
    await browser.close();
  }
}

describe('gateway: limits.maxHeaderBytes on HTTP/1.1', () => {
  const meshes: Record<number, GatewayMesh> = {};
  beforeAll(async () => {
    for (const limit of [8192, 32_768]) {
      meshes[limit] = await startGatewayMesh({
        gateway: (base) => ({ ...base, limits: { maxHeaderBytes: limit } }),
      });
    }
  });
  afterAll(async () => {
    for (const mesh of Object.values(meshes)) await mesh.close();
  });

  it('fail/a head past a limit below 16 KiB → 431', async () => {
    expect(await statusWithHeader(meshes[8192] as GatewayMesh, 10_000)).toEqual({
      status: 431,
      code: 'MESHAUTH_ERR_HEADERS_TOO_LARGE',
    });
  });

  it('ok/a head within a limit below 16 KiB is served', async () => {
    expect(await statusWithHeader(meshes[8192] as GatewayMesh, 6_000)).toEqual({ status: 302 });
  });

  it('ok/a head past 16 KiB within a limit above it is served', async () => {
    expect(await statusWithHeader(meshes[32_768] as GatewayMesh, 20_000)).toEqual({ status: 302 });
  });

  // Node 20's node:http keeps the first 1,000 fields of a head and drops the rest unseen; the gateway adds its own
  // before the sidecar's inbound, which takes 990: past 980 (within the byte limit) is 431, rule header_count.
  it('fail/more than 980 header fields → 431 header_count, one count, one log line; 970 are served', async () => {
    const mesh = meshes[32_768] as GatewayMesh;
    const fields = (count: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`a${i}`, '1']));
    const browser = new ScriptedBrowser(mesh.ca.rootPem);
    const rule = async () =>
      (await mesh.metrics.gatewayDecisions.get()).values.find(
        (v) => v.labels.route === '' && v.labels.decision === 'deny' && v.labels.rule === 'header_count',
      )?.value ?? 0;
    try {
      const before = await rule();
      const seen = mesh.log.lines.length;
      const refused = await browser.fetch(`${mesh.origin}/shop`, { headers: fields(981) });
      expect(refused.status).toBe(431);
      expect(JSON.parse(refused.body).code).toBe('MESHAUTH_ERR_HEADERS_TOO_LARGE');
      expect(refused.headers.connection).toBe('close'); // Node 20's view of that head was cut short
      expect(await rule()).toBe(before + 1);
      const denies = mesh.log.lines.slice(seen).filter((line) => line.event === 'gateway_deny');
      expect(denies).toMatchObject([{ route: '', rule: 'header_count' }]);
      expect((await browser.fetch(`${mesh.origin}/shop`, { headers: fields(970) })).status).toBe(302);
    } finally {
      await browser.close();
    }
  });
});
