// A sidecar whose external listener (server TLS for outside callers with a bearer token) serves a recording app:
// its server certificate for 127.0.0.1/localhost from the test CA, one end-user issuer whose keys are a JWKS file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sidecarConfigFromObject } from '../../src/config/index.js';
import type { Logger } from '../../src/telemetry/index.js';
import { jwksText, type SigningKey, signingKey } from './end-user-keys.js';
import { startApp, startTestSidecar, type TestApp, type TestSidecar } from './sidecar-harness.js';
import { TestCa } from './test-ca.js';

export const EXTERNAL_TD = 'example.org';
/** The end-user issuer the sidecar trusts (audience `api`, ES256). */
export const EXTERNAL_ISSUER = 'https://issuer.test';

export interface ExternalSidecar {
  readonly ca: TestCa;
  readonly app: TestApp;
  readonly sc: TestSidecar;
  /** The issuer's signing key (its JWKS is what the sidecar reads). */
  readonly key: SigningKey;
  close(): Promise<void>;
}

export interface ExternalSidecarOptions {
  readonly id?: string;
  readonly maxConnections?: number;
  readonly logger?: Logger;
  /** Peers whose vouched end users the inbound accepts (`inbound.endUser.vouchers`). */
  readonly vouchers?: readonly string[];
  /** Where the issuer's keys are fetched from instead of the JWKS file of `key`. */
  readonly jwksUri?: string;
  /** `inbound.endUser.maxTokenLifetime`, e.g. `1h` (default: the sidecar's). */
  readonly maxTokenLifetime?: string;
  /** Host the inbound and external listeners bind (default 127.0.0.1; `::ffff:127.0.0.1` is a dual-stack socket). */
  readonly listenHost?: string;
}

export async function startExternalSidecar(options: ExternalSidecarOptions = {}): Promise<ExternalSidecar> {
  const ca = await TestCa.create(EXTERNAL_TD);
  const dir = mkdtempSync(join(tmpdir(), 'meshauth-external-'));
  const key = await signingKey('k1');
  writeFileSync(join(dir, 'jwks.json'), jwksText(key));
  const server = await ca.issue({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  writeFileSync(join(dir, 'c.crt'), server.chainPem);
  writeFileSync(join(dir, 'c.key'), server.keyPem, { mode: 0o600 });
  const app = await startApp();
  const id = options.id ?? `spiffe://${EXTERNAL_TD}/ns/a/sa/api`;
  const issuer = {
    issuer: EXTERNAL_ISSUER,
    jwksUri: options.jwksUri ?? `file://${join(dir, 'jwks.json')}`,
    audiences: ['api'],
    algorithms: ['ES256'],
  };
  const listen = options.listenHost?.includes(':')
    ? `[${options.listenHost}]:0`
    : `${options.listenHost ?? '127.0.0.1'}:0`;
  const config = sidecarConfigFromObject(
    {
      trustDomain: EXTERNAL_TD,
      ca: { url: 'https://127.0.0.1:1', bundle: '/nonexistent', token: '/nonexistent' },
      inbound: {
        listen,
        app: `127.0.0.1:${app.port}`,
        endUser: {
          issuers: [issuer],
          ...(options.vouchers === undefined ? {} : { vouchers: options.vouchers }),
          ...(options.maxTokenLifetime === undefined ? {} : { maxTokenLifetime: options.maxTokenLifetime }),
        },
        external: { listen, cert: join(dir, 'c.crt'), key: join(dir, 'c.key') },
      },
      outbound: { listen: '127.0.0.1:0', routes: {} },
      admin: { listen: '127.0.0.1:0' },
    },
    'external.yaml',
  );
  const sc = await startTestSidecar(ca, id, config, {
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.maxConnections === undefined ? {} : { inboundLimits: { maxConnections: options.maxConnections } }),
  });
  return {
    ca,
    app,
    sc,
    key,
    close: async () => {
      await sc.sidecar.close(0);
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
