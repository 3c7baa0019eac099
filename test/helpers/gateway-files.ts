// The files a gateway config names, written into a test's directory: the mesh's bundle and the gateway's serving
// certificate (127.0.0.1) and key from a fresh test CA, and `write` for any other file the test needs.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCa } from './test-ca.js';

export interface GatewayFiles {
  readonly bundle: string;
  readonly cert: string;
  readonly key: string;
  /** Writes `text` to `name` in the directory and returns its path. */
  readonly write: (name: string, text: string) => string;
}

export async function writeGatewayFiles(dir: string): Promise<GatewayFiles> {
  const ca = await TestCa.create();
  const server = await ca.issue({ id: ca.idFor('/ns/edge/sa/public'), ipAddresses: ['127.0.0.1'] });
  const write = (name: string, text: string): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  return {
    bundle: write('bundle.pem', ca.bundlePem),
    cert: write('gateway.crt', server.chainPem),
    key: write('gateway.key', server.keyPem),
    write,
  };
}

/**
 * A gateway config document with one route, to 127.0.0.1:1 (never dialled), and no sign-in; the CA is never reached
 * either. `token` is left out when the test sets `ca.token` itself.
 */
export function oneRouteGatewayDocument(files: {
  readonly bundle: string;
  readonly cert: string;
  readonly key: string;
  readonly token?: string;
}): Record<string, unknown> {
  return {
    trustDomain: 'example.org',
    ca: {
      url: 'https://127.0.0.1:1',
      bundle: files.bundle,
      ...(files.token === undefined ? {} : { token: files.token }),
    },
    listen: '127.0.0.1:0',
    tls: { cert: files.cert, key: files.key },
    routes: [
      {
        name: 'app',
        match: { host: '*', pathPrefix: '/' },
        to: { address: '127.0.0.1:1', ids: ['spiffe://example.org/ns/shop/sa/app'] },
        login: 'none',
      },
    ],
    admin: { listen: '127.0.0.1:0' },
  };
}
