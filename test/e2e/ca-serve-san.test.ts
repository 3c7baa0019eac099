// `ca serve --san` puts each value into the serving certificate as a DNS name or an IP address. A value that is
// neither (a URL, host:port, a typo) is a usage error: exit 2 before anything listens. It used to go into the
// certificate as a DNS name no client ever matches, and the CA started without a word.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, meshauth, serveCa } from '../helpers/meshauth-cli.js';

let cwd: string;
beforeAll(async () => {
  assertBuilt(['src/ca', 'src/cli']);
  cwd = mkdtempSync(join(tmpdir(), 'meshauth-e2e-san-'));
  expect((await meshauth(['ca', 'init', '--trust-domain', 'example.org'], { cwd })).code).toBe(0);
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

describe('ca serve --san', () => {
  // The last two: mistyped IP addresses, which no host name can be (its last label is never all digits).
  it.each(['https://ca.example:8443', 'ca.example:8443', 'bad name!', 'ca.example.', '10.0.0.256', '10.0.5'])(
    'fail/--san %s → exit 2 MESHAUTH_ERR_USAGE naming it',
    async (san) => {
      // A refused value never gets as far as listening; the timeout of meshauth() ends one that would.
      const result = await meshauth(['ca', 'serve', '--listen', '127.0.0.1:0', '--san', san], { cwd });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toBe(
        `meshauth: --san ${JSON.stringify(san)} is not a DNS name or an IP address (e.g. ca.mesh.svc or 10.0.0.5) [MESHAUTH_ERR_USAGE]\n`,
      );
      expect(result.stdout).toBe('');
    },
  );

  it('ok/DNS names (a wildcard too), IPv4 and IPv6 are served in the certificate', async () => {
    const sans = ['ca.mesh.svc', 'Meshauth-CA.meshauth.svc.cluster.local', '*.ca.example', '10.0.0.5', 'fd00::5'];
    const { serve, url: served } = await serveCa(cwd, { args: sans.flatMap((s) => ['--san', s]) });
    try {
      const url = new URL(served);
      const altNames = await new Promise<string>((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: Number(url.port), rejectUnauthorized: false }, () => {
          resolve(new X509Certificate(socket.getPeerCertificate().raw).subjectAltName ?? '');
          socket.destroy();
        });
        socket.once('error', reject);
      });
      for (const name of ['ca.mesh.svc', 'Meshauth-CA.meshauth.svc.cluster.local', '*.ca.example']) {
        expect(altNames).toContain(`DNS:${name}`);
      }
      expect(altNames).toContain('IP Address:10.0.0.5');
      expect(altNames).toMatch(/IP Address:FD00:0:0:0:0:0:0:5/i);
    } finally {
      expect(await serve.stop()).toBe(0);
    }
  });
});
