// A `ca.bundle` that stops reading while the agent holds an SVID (replaced by a FIFO, a directory: whoever may
// write its directory): renewals go on with the bundle held, and the agent says so once at warn, naming the file
// and the code, since the next bootstrap reads that file alone and would fail on it. It was a debug line only.
import { copyFileSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fifoIn } from '../helpers/special-files.js';
import { waitFor } from '../helpers/wait.js';
import { CaHarness, type Cleanup, rotations, runCleanups, startAgent } from './agent-harness.js';

const cleanups: Cleanup[] = [];
afterEach(() => runCleanups(cleanups));

describe('agent whose ca.bundle stops reading', () => {
  it('fail/one warn line per run of failed reads; renewals go on', async () => {
    const ca = await CaHarness.start(4_000, cleanups);
    const { metrics, logs, bundleFile } = startAgent(ca, await ca.token(), cleanups);
    const renewedTo = (count: number) =>
      waitFor(`${count} SVIDs`, async () => (await rotations(metrics, 'success')) >= count, 20_000);
    await renewedTo(1);
    const good = join(dirname(bundleFile), 'good.pem');
    copyFileSync(bundleFile, good);
    const warned = () => logs.filter((l) => l.event === 'bundle_file_unreadable' && l.level === 'warn');

    // A FIFO renamed over the file, as a writer of the directory would put it there.
    renameSync(fifoIn(dirname(bundleFile), 'planted'), bundleFile);
    await renewedTo(3);
    expect(warned()).toMatchObject([
      { bundleFile, code: 'MESHAUTH_ERR_FILE_UNREADABLE', reason: 'trust_bundle_unreadable' },
    ]);
    expect(String(warned()[0]?.error)).toContain('not a regular file');

    // Readable again, then a directory in its place: a new run of failures, a new line.
    rmSync(bundleFile);
    copyFileSync(good, bundleFile);
    await renewedTo(4);
    rmSync(bundleFile);
    mkdirSync(bundleFile);
    await renewedTo(5);
    expect(warned()).toHaveLength(2);
  }, 30_000);
});
