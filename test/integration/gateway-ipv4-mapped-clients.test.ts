// An IPv4 client of a dual-stack edge gateway (`listen: "[::]:443"`) arrives as IPv4-mapped IPv6 (`::ffff:a.b.c.d`).
// The gateway tells the service and its logs the IPv4 address it is, as the sidecar's external listener does: the
// service got `X-Forwarded-For: ::ffff:127.0.0.1` and refusal lines named the client in that form, so one client read
// as two addresses across an IPv4 and a dual-stack gateway. Bound here to ::ffff:127.0.0.1 (an IPv6 socket on
// loopback), dialed at 127.0.0.1.
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayWithHttp1Peer, startGatewayWithHttp1Peer } from '../helpers/gateway-mesh.js';

describe('gateway: IPv4 clients of a dual-stack listener', () => {
  let started: GatewayWithHttp1Peer | undefined;
  let agent: Agent;
  const seen: IncomingHttpHeaders[] = [];
  beforeAll(async () => {
    started = await startGatewayWithHttp1Peer(
      (req, res) => {
        seen.push(req.headers);
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
        res.end('ok');
      },
      {},
      '[::ffff:127.0.0.1]',
    );
    agent = new Agent({ connect: { ca: started.mesh.ca.rootPem } });
  });
  afterAll(async () => {
    await agent?.close();
    await started?.close();
  });

  it('ok/the service is told X-Forwarded-For: 127.0.0.1', async () => {
    const mesh = started?.mesh as GatewayWithHttp1Peer['mesh'];
    const answer = await request(`${mesh.origin}/legacy/whoami`, { dispatcher: agent });
    await answer.body.dump();
    expect(answer.statusCode).toBe(200);
    expect(seen.at(-1)?.['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('fail/a refusal before routing is logged with sourceIp 127.0.0.1', async () => {
    const mesh = started?.mesh as GatewayWithHttp1Peer['mesh'];
    const answer = await request(`${mesh.origin}/.meshauth/other`, { dispatcher: agent });
    await answer.body.dump();
    expect(answer.statusCode).toBe(404);
    const refusals = mesh.log.find({ event: 'gateway_deny', rule: 'reserved_path' });
    expect(refusals.map((line) => line.sourceIp)).toEqual(['127.0.0.1']);
  });
});
