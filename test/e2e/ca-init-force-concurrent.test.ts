// `meshauth ca init --force` over the directory of a running `ca serve`: while it mints its next intermediate
// (--auto-rotate-intermediate), the replaced CA must come out whole (intermediate key and certificate of one run, the
// intermediate under the new root in bundle.pem) and the server must switch to it; and a server that reloads while
// init is still writing must end up in the new CA's trust domain.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { loadCaMaterial, rotateIntermediate } from '../../src/ca/index.js';
import { cliCaDirPerTest } from '../helpers/ca-dir.js';
import { spawnAutoRotatingServe, spawnCli, waitForCli } from '../helpers/cli-process.js';
import { pauseAfterRename } from '../helpers/pause-at-rename.js';
import { eventually, waitFor } from '../helpers/wait.js';

const ca = cliCaDirPerTest('meshauth-e2e-init-force-concurrent-');
const dir = () => ca.dir;

describe('meshauth ca init --force while ca serve rotates the intermediate', () => {
  it('ok/the new CA is whole and the server loads it', async () => {
    // An intermediate already past half its life: the server rotates within its first second.
    await rotateIntermediate(dir(), new Date(Date.now() - 120_000), 200_000);
    const pause = pauseAfterRename(ca.cwd, 'intermediate.key', 'serve');
    const serve = spawnAutoRotatingServe(dir(), ca.cleanups, pause.env);
    await pause.reached();
    const init = spawnCli(['ca', 'init', '--force', '--trust-domain', 'example.org', '--dir', dir()], ca.cleanups);
    await waitFor(
      'init to finish or wait for the server',
      () => !init.alive() || /waiting/.test(init.output()),
      15_000,
    );
    pause.release();
    expect((await init.exited).code, init.output()).toBe(0);
    expect(init.output()).toMatch(/waiting for another process changing .* \(\.intermediate-rotation\.lock: /);
    await waitForCli(
      serve,
      'the auto-rotation to finish',
      () => serve.logs().some((l) => l.event === 'intermediate_rotated' || l.event === 'intermediate_rotation_failed'),
      15_000,
    );
    // Throws MESHAUTH_ERR_CA_UNAVAILABLE `inconsistent` on a key that is not intermediate.crt's or a broken chain.
    const material = await loadCaMaterial(dir());
    expect(material.root.toString('pem').trim()).toBe(readFileSync(join(dir(), 'root.crt'), 'utf8').trim());
    const serial = material.issuer.certificate.serialNumber;
    await waitForCli(
      serve,
      `the server to load intermediate ${serial}`,
      () => serve.logs().some((l) => l.event === 'ca_reloaded' && l.intermediateSerial === serial),
      15_000,
    );
  });

  it('ok/a new trust domain: a server that reloads in the middle of init serves the new one', async () => {
    const serve = spawnCli(['ca', 'serve', '--dir', dir(), '--listen', '127.0.0.1:0'], ca.cleanups);
    const port = Number(
      (
        await waitForCli(
          serve,
          'the listening line',
          () => /listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(serve.output()),
          15_000,
        )
      )[1],
    );
    // Held once the new intermediate and bundle are in place: the server's next file check (every second) loads them.
    const pause = pauseAfterRename(ca.cwd, 'bundle.pem', 'init');
    const init = spawnCli(
      ['ca', 'init', '--force', '--trust-domain', 'other.org', '--dir', dir()],
      ca.cleanups,
      pause.env,
    );
    await pause.reached();
    const serial = (await readIntermediateSerial()) as string;
    await waitForCli(
      serve,
      `the server to load intermediate ${serial}`,
      () => serve.logs().some((l) => l.event === 'ca_reloaded' && l.intermediateSerial === serial),
      15_000,
    );
    pause.release();
    expect((await init.exited).code, init.output()).toBe(0);
    const bundle = readFileSync(join(dir(), 'bundle.pem'), 'utf8');
    // Its own certificate, re-issued from the material it loaded, names the trust domain it signs for.
    let san = '';
    await eventually(async () => {
      san = await servingSan(port, bundle);
      return san.startsWith('URI:');
    }, 10_000);
    expect(san).toMatch(/^URI:spiffe:\/\/other\.org\/meshauth\/ca,/);
    expect(serve.alive()).toBe(true);
  });
});

async function readIntermediateSerial(): Promise<string | undefined> {
  const { parseCertificatesPem } = await import('../../src/pki/index.js');
  return parseCertificatesPem(readFileSync(join(dir(), 'intermediate.crt'), 'utf8'))[0]?.serialNumber;
}

/** The subjectAltName of the server's certificate when it chains to `bundlePem`, else why the handshake failed. */
function servingSan(port: number, bundlePem: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca: bundlePem, checkServerIdentity: () => undefined });
    socket.once('secureConnect', () => {
      resolve(socket.getPeerCertificate().subjectaltname ?? 'no subjectAltName');
      socket.destroy();
    });
    socket.once('error', (error) => resolve(`handshake failed: ${error.message}`));
  });
}
