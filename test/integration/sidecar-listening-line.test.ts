// The "sidecar listening" line says where each listener is: host:port (IPv6 in brackets) next to the bare ports
// it always had (scripts read those).
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialHolder } from '../../src/agent/credential-holder.js';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import { type RunningSidecar, startSidecar } from '../../src/sidecar/index.js';
import { Metrics } from '../../src/telemetry/index.js';
import { logLines } from '../helpers/log-lines.js';

let sidecar: RunningSidecar | undefined;
afterEach(async () => {
  await sidecar?.close(0);
  sidecar = undefined;
});

describe('sidecar listening line', () => {
  it('ok/names the host and port of every listener', async () => {
    const config = sidecarConfigFromObject(
      {
        trustDomain: 'example.org',
        ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent/bundle.pem', token: '/nonexistent/token' },
        inbound: { listen: '127.0.0.2:0', app: '127.0.0.1:1' },
        outbound: {
          listen: '127.0.0.1:0',
          tcp: { '127.0.0.3:0': { address: 'db.example.org:5432', ids: ['spiffe://example.org/ns/data/sa/db'] } },
        },
        admin: { listen: '[::ffff:127.0.0.1]:0' },
      },
      'listening.yaml',
    );
    const log = logLines('sidecar');
    sidecar = await startSidecar(config, {
      logger: log.logger,
      metrics: new Metrics(),
      holder: new CredentialHolder(),
      agent: false,
    });
    const [line] = log.find({ msg: 'sidecar listening' });
    const tcpPort = sidecar.tcpPorts.get('127.0.0.3:0');
    expect(line).toMatchObject({
      inbound: sidecar.inboundPort,
      outbound: sidecar.outboundPort,
      admin: sidecar.adminPort,
      addresses: {
        inbound: `127.0.0.2:${sidecar.inboundPort}`,
        outbound: `127.0.0.1:${sidecar.outboundPort}`,
        admin: `[::ffff:127.0.0.1]:${sidecar.adminPort}`,
        tcp: { '127.0.0.3:0': `127.0.0.3:${tcpPort}` },
      },
    });
  });
});
