// `meshauth ca serve` started while `ca rotate --intermediate` is between writing the new intermediate key and its
// certificate: it waits for the rotation's lock and starts on the rotated intermediate, instead of exiting 1 with
// "CA directory … is inconsistent" (a replica restarted by its supervisor during another replica's rotation).
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { cliCaDirPerTest } from '../helpers/ca-dir.js';
import { spawnCli } from '../helpers/cli-process.js';
import { pauseAfterRename } from '../helpers/pause-at-rename.js';
import { waitFor } from '../helpers/wait.js';

const ca = cliCaDirPerTest('meshauth-e2e-serve-during-rotation-');
const dir = () => ca.dir;

describe('meshauth ca serve started during an intermediate rotation', () => {
  it('ok/waits for the rotation, then serves the new intermediate', async () => {
    const pause = pauseAfterRename(ca.cwd, 'intermediate.key', 'rotate');
    const rotate = spawnCli(['ca', 'rotate', '--intermediate', '--dir', dir()], ca.cleanups, pause.env);
    await pause.reached();
    const serve = spawnCli(['ca', 'serve', '--dir', dir(), '--listen', '127.0.0.1:0'], ca.cleanups);
    await waitFor(
      'ca serve to exit or wait for the rotation',
      () => !serve.alive() || /waiting for a rotation in progress/.test(serve.output()),
      15_000,
    );
    pause.release();
    expect((await rotate.exited).code, rotate.output()).toBe(0);
    await waitFor('ca serve to listen', () => !serve.alive() || /listening on https:/.test(serve.output()), 15_000);
    expect(serve.alive(), serve.output()).toBe(true);
    // Its serving certificate is signed by the intermediate the rotation left on disk.
    const port = Number(/listening on https:\/\/127\.0\.0\.1:(\d+)/.exec(serve.output())?.[1]);
    const served = await new Promise<X509Certificate>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
        const peer = socket.getPeerX509Certificate();
        socket.destroy();
        if (peer === undefined) reject(new Error('no server certificate'));
        else resolve(peer);
      });
      socket.on('error', reject);
    });
    const intermediate = new X509Certificate(readFileSync(join(dir(), 'intermediate.crt')));
    expect(served.verify(intermediate.publicKey)).toBe(true);
  });
});
