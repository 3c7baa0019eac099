// `meshauth webhook --tls-cert/--tls-key PATH` where PATH is not a regular file: exit 2 at once naming the flag. A
// FIFO with no writer blocked the start for ever (and, once running, a reload: every later check waited behind it),
// a directory said only "cannot read the webhook certificate and key".
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, MAIN } from '../helpers/meshauth-cli.js';
import { runCommand } from '../helpers/sidecar-harness.js';
import { fifoIn } from '../helpers/special-files.js';
import { makeWebhookCert } from '../helpers/webhook-tls.js';

const dir = mkdtempSync(join(tmpdir(), 'meshauth-e2e-webhook-tls-kind-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => assertBuilt(['src/config', 'src/cli', 'src/k8s', 'src/platform']));

/** The built webhook on 127.0.0.1 port 0, killed after 10 s (the blocked start it used to be). */
const webhook = (cert: string, key: string) =>
  runCommand(process.execPath, [MAIN, 'webhook', '--listen', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', key], {
    timeoutMs: 10_000,
  });

describe('meshauth webhook TLS files that are not regular files', () => {
  it('fail/--tls-cert a FIFO with no writer → exit 2 at once, "certificate file <path>: not a regular file"', async () => {
    makeWebhookCert(dir, 'fifo-case');
    const fifo = fifoIn(dir, 'tls.crt');
    const result = await webhook(fifo, join(dir, 'fifo-case.key'));
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(
      `meshauth: --tls-cert: certificate file ${fifo}: not a regular file [MESHAUTH_ERR_FILE_UNREADABLE]\n`,
    );
  });

  it('fail/--tls-key a directory → exit 2, "--tls-key: key file <path>: not a regular file"', async () => {
    makeWebhookCert(dir, 'directory-case');
    const keyDir = join(dir, 'tls.key.d');
    mkdirSync(keyDir);
    const result = await webhook(join(dir, 'directory-case.crt'), keyDir);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(
      `meshauth: --tls-key: key file ${keyDir}: not a regular file [MESHAUTH_ERR_FILE_UNREADABLE]\n`,
    );
  });
});
