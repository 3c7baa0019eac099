// The two lines the outbound writes about one endpoint of a DNS route, its ejection after connect failures and its
// drain when the name stops resolving to it, name it the same way: `endpoint: "host:port"` (`[v6]:port`), the
// spelling of the ejection line and of the outbound's other address fields. The drain line used to write the bare
// address under `endpoint` with the port in a field of its own, so one search for an endpoint missed half its lines.
// Real connects to a closed port on 127.0.0.2; the resolver is a stub.
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import type { Resolution } from '../../src/sidecar/endpoints/dns-resolver.js';
import { EJECTION } from '../../src/sidecar/endpoints/ejection.js';
import { createLogger } from '../../src/telemetry/index.js';
import { ClientTlsContext } from '../../src/tls/index.js';
import { scriptedEndpointSet } from '../helpers/scripted-endpoint-set.js';
import { TestCa } from '../helpers/test-ca.js';
import { waitFor } from '../helpers/wait.js';

const EJECTED = 'endpoint ejected after consecutive connect failures';
const DRAINED = 'endpoint removed (no longer in DNS); draining';

/** A port on `host` that refuses connections: bound, then closed. */
async function closedPort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('outbound endpoint log lines', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('ok/the ejection line and the drain line name the endpoint in the same field, as host:port', async () => {
    const ca = await TestCa.create();
    const svid = await ca.issue({ id: ca.idFor('/ns/front/sa/web') });
    const tls = new ClientTlsContext(new CredentialHolder({ svid: svid.svid, bundle: ca.bundle }), { tls12: false });
    cleanups.push(() => tls.close());
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      level: 'info',
      destination: { write: (line: string) => lines.push(JSON.parse(line)) },
    });
    const port = await closedPort('127.0.0.2');
    let resolution: Resolution = {
      addresses: ['127.0.0.2'],
      ttlSeconds: 0,
      ignored: [],
      overCap: 0,
      failedFamilies: [],
    };
    const set = scriptedEndpointSet({ ca, tls, port, logger, resolve: () => resolution });
    cleanups.push(() => set.close(Date.now()));

    const endpoint = await set.pick();
    for (let i = 0; i < EJECTION.consecutiveFailures; i++) {
      await expect(Promise.resolve(endpoint.target())).rejects.toThrow();
    }
    const ejected = await waitFor('the ejection line', () => lines.find((l) => l.msg === EJECTED));
    // The name now resolves elsewhere: the endpoint is drained at the next resolution (after the TTL's lower bound).
    resolution = { addresses: ['127.0.0.3'], ttlSeconds: 0, ignored: [], overCap: 0, failedFamilies: [] };
    const drained = await waitFor('the drain line', () => lines.find((l) => l.msg === DRAINED), 10_000);

    for (const line of [ejected, drained]) {
      expect(line).toMatchObject({ direction: 'outbound', route: 'orders.shop', endpoint: `127.0.0.2:${port}` });
      expect(line).not.toHaveProperty('port');
      expect(line).not.toHaveProperty('address');
    }
  });
});
