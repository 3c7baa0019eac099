// Two of the sidecar's own listeners on one address cannot both bind. The config used to pass validation and the
// start then died on the second bind with Node's raw "listen EADDRINUSE" (exit 1, no MESHAUTH_ERR_* code, no key),
// after the first listeners had come up. The loader refuses it instead, naming both keys (exit 2 in the CLI).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSidecarConfig, sidecarConfigFromObject } from '../../../src/config/index.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const base = {
  trustDomain: 'example.org',
  ca: { url: 'https://ca.example:8443', bundle: '/b', token: '/t' },
};

function refusal(document: Record<string, unknown>): string {
  try {
    sidecarConfigFromObject({ ...base, ...document }, 'sidecar.yaml');
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_CONFIG_INVALID')) return error.message;
    throw error;
  }
  throw new Error('expected MESHAUTH_ERR_CONFIG_INVALID');
}

describe('sidecar listeners must not share an address', () => {
  it('fail/admin.listen on inbound.listen', () => {
    expect(refusal({ inbound: { listen: '127.0.0.1:18006' }, admin: { listen: '127.0.0.1:18006' } })).toBe(
      'sidecar.yaml: admin.listen: expected an address of its own, not the one of inbound.listen (127.0.0.1:18006): two listeners cannot bind one port',
    );
  });

  it('fail/a wildcard admin listener on the default outbound port', () => {
    expect(refusal({ admin: { listen: '0.0.0.0:15001' } })).toContain(
      'admin.listen: expected an address of its own, not the one of outbound.listen (127.0.0.1:15001)',
    );
  });

  it('fail/an outbound.tcp listener on the outbound listener', () => {
    expect(
      refusal({
        outbound: {
          listen: '127.0.0.1:15001',
          tcp: { 'localhost:15001': { address: 'db:15006', ids: ['spiffe://example.org/ns/db/sa/db'] } },
        },
      }),
    ).toContain('outbound.tcp["localhost:15001"]: expected an address of its own, not the one of outbound.listen');
  });

  it('ok/the defaults, distinct ports, and port 0 everywhere (tests) still load', () => {
    expect(() => sidecarConfigFromObject(base)).not.toThrow();
    expect(() =>
      sidecarConfigFromObject({
        ...base,
        inbound: { listen: '127.0.0.1:0' },
        outbound: { listen: '127.0.0.1:0' },
        admin: { listen: '127.0.0.1:0' },
      }),
    ).not.toThrow();
    // The same port on two different loopback addresses is two places.
    expect(() =>
      sidecarConfigFromObject({
        ...base,
        inbound: { listen: '127.0.0.2:15001' },
        outbound: { listen: '127.0.0.1:15001' },
      }),
    ).not.toThrow();
  });
});

describe('a clash set by the environment', () => {
  it('fail/names the MESHAUTH_* variable that set the address, not only the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'meshauth-clash-'));
    try {
      const file = join(dir, 'sidecar.yaml');
      writeFileSync(file, 'trustDomain: example.org\nca: { url: "https://ca.example:8443", bundle: /b, token: /t }\n');
      let message = '';
      try {
        loadSidecarConfig(file, { MESHAUTH_ADMIN_LISTEN: '127.0.0.1:15006' });
      } catch (error) {
        if (isMeshauthError(error, 'MESHAUTH_ERR_CONFIG_INVALID')) message = error.message;
        else throw error;
      }
      expect(message).toBe(
        `${file}: admin.listen (from MESHAUTH_ADMIN_LISTEN): expected an address of its own, not the one of inbound.listen (0.0.0.0:15006): two listeners cannot bind one port`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
