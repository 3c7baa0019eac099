// The policy file is read like every other operator-controlled file (platform/regular-file.ts): something that is not
// a regular file at the path is refused at once. It used to be read with fs.promises.readFile: a FIFO at the path
// hung `meshauth policy validate` and the sidecar's start without a word, and on a reload it hung that reload and,
// since reloads run one after another, every later one: a fixed policy file was never picked up again.
import { closeSync, constants, openSync } from 'node:fs';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPolicyFile } from '../../src/authz/index.js';
import { PolicyWatcher } from '../../src/authz/policy-watcher.js';
import { isMeshauthError } from '../../src/errors/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { fifoIn } from '../helpers/special-files.js';

const policyText = (name: string): string =>
  `apiVersion: meshauth.dev/v1\nkind: Policy\nrules:\n  - name: ${name}\n    action: allow\n    to: { paths: ["/x"] }\n`;

/** `promise`, or `'hung'` when it has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms = 3_000): Promise<T | 'hung'> {
  return Promise.race([promise, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), ms).unref())]);
}

/** Lets a reader blocked on `fifo` go (a writer opens and closes it), so a failing run leaves no stuck thread. */
function unblock(fifo: string): void {
  try {
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // no reader waiting (ENXIO) or already gone
  }
}

describe('a policy path that is not a regular file', () => {
  let dir: string;
  const fifos: string[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshauth-policy-fifo-'));
  });
  afterEach(async () => {
    for (const fifo of fifos.splice(0)) unblock(fifo);
    await rm(dir, { recursive: true, force: true });
  });

  it('fail/a FIFO is refused at once with MESHAUTH_ERR_FILE_UNREADABLE (not a regular file)', async () => {
    const fifo = fifoIn(dir, 'policy.yaml');
    fifos.push(fifo);
    const outcome = await within(
      loadPolicyFile(fifo).then(
        () => 'loaded',
        (error: unknown) => error,
      ),
    );
    expect(outcome).not.toBe('hung');
    expect(isMeshauthError(outcome, 'MESHAUTH_ERR_FILE_UNREADABLE'), String(outcome)).toBe(true);
    // The code readRegularFile makes up (ENOTREG) is nothing a user can look up: the message says what it means.
    expect((outcome as Error).message).toBe(`cannot read policy file ${fifo}: not a regular file`);
  });

  it('fail/a reload that meets a FIFO fails and counts; the next valid file is still applied', async () => {
    const file = join(dir, 'policy.yaml');
    await writeFile(file, policyText('first'));
    const metrics = new Metrics();
    const watcher = new PolicyWatcher({ file, logger: silentLogger(), metrics, fsWatch: false, settleMs: 0 });
    try {
      await watcher.start();
      const fifo = fifoIn(dir, 'incoming.fifo');
      fifos.push(file); // after the rename the FIFO is at `file`
      await rename(fifo, file);
      expect(await within(watcher.reload())).not.toBe('hung');
      const failures = (await metrics.policyReloads.get()).values.find((v) => v.labels.result === 'failure');
      expect(failures?.value).toBe(1);
      expect(watcher.current().rules.map((r) => r.name)).toContain('first');

      await writeFile(join(dir, 'next.yaml'), policyText('second'));
      await rename(join(dir, 'next.yaml'), file);
      expect(await within(watcher.reload())).not.toBe('hung');
      expect(watcher.current().rules.map((r) => r.name)).toContain('second');
    } finally {
      watcher.close();
    }
  });
});
