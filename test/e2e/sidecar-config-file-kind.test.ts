// `meshauth sidecar --config PATH` where PATH is not a config file (a wrong path, a typo): refused at once with exit
// 2 naming it, as the sidecar refuses such a policy, bundle or token file. A FIFO without a writer used to block the
// start for ever, a large file was read whole (a device without end: the process aborted out of memory).
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, MAIN } from '../helpers/meshauth-cli.js';
import { runCommand } from '../helpers/sidecar-harness.js';
import { fifoIn } from '../helpers/special-files.js';

const dir = mkdtempSync(join(tmpdir(), 'meshauth-e2e-config-kind-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => assertBuilt(['src/config', 'src/cli', 'src/platform']));

/** `meshauth sidecar --config file`, killed after 10 s (the blocked start it used to be). */
const sidecar = (file: string) =>
  runCommand(process.execPath, [MAIN, 'sidecar', '--config', file], { timeoutMs: 10_000 });

describe('meshauth sidecar --config naming something other than a config file', () => {
  it('fail/a FIFO with no writer → exit 2 at once, MESHAUTH_ERR_FILE_UNREADABLE naming it', async () => {
    const fifo = fifoIn(dir, 'sidecar.yaml');
    const result = await sidecar(fifo);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(
      `meshauth: ${fifo}: cannot read config file (not a regular file) [MESHAUTH_ERR_FILE_UNREADABLE]\n`,
    );
  });

  it('fail/a file over 1 MiB → exit 2, MESHAUTH_ERR_FILE_UNREADABLE saying so; it is not parsed', async () => {
    const big = join(dir, 'big.yaml');
    writeFileSync(big, 'trustDomain: example.org\n');
    truncateSync(big, 1024 * 1024 + 1);
    const result = await sidecar(big);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(
      `meshauth: ${big}: config file is larger than 1048576 bytes [MESHAUTH_ERR_FILE_UNREADABLE]\n`,
    );
  });
});
