// The policy file watcher with a real temporary file: a valid change is applied, an invalid one keeps the old
// policy (and is counted), close() stops watching. Waits are bounded polls, not wall-clock assertions.
import { mkdtemp, open, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decide } from '../../../src/authz/decide.js';
import type { CompiledPolicy } from '../../../src/authz/policy/compiled-policy.js';
import { PolicyWatcher, type PolicyWatcherOptions } from '../../../src/authz/policy-watcher.js';
import { isMeshauthError } from '../../../src/errors/index.js';
import { createLogger, Metrics, silentLogger } from '../../../src/telemetry/index.js';
import { waitFor } from '../../helpers/wait.js';
import { request } from './authz-fixtures.js';

const policyText = (path: string): string =>
  `apiVersion: meshauth.dev/v1\nkind: Policy\nrules:\n  - name: allow-${path.slice(1)}\n    action: allow\n    to: { paths: ["${path}"] }\n`;

async function reloads(metrics: Metrics, result: string): Promise<number> {
  const data = await metrics.policyReloads.get();
  return data.values.find((v) => v.labels.result === result)?.value ?? 0;
}

/**
 * How long a reload waits for the file to stop changing: the product's 1 s would be most of each case's time; the
 * case about a half-written file sets its own.
 */
const SETTLE_MS = 50;

describe('PolicyWatcher', () => {
  let dir: string;
  let file: string;
  let watcher: PolicyWatcher | undefined;
  let metrics: Metrics;
  const changes: CompiledPolicy[] = [];

  /** Replaces the watcher with a started one on `file` (polling every 50 ms, 20 ms debounce) and these options. */
  async function restartWatcher(options: Partial<PolicyWatcherOptions>): Promise<PolicyWatcher> {
    watcher?.close();
    const started = new PolicyWatcher({
      file,
      logger: silentLogger(),
      metrics,
      pollIntervalMs: 50,
      debounceMs: 20,
      settleMs: SETTLE_MS,
      ...options,
    });
    watcher = started;
    await started.start();
    return started;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'meshauth-policy-'));
    file = join(dir, 'policy.yaml');
    await writeFile(file, policyText('/one'));
    metrics = new Metrics();
    changes.length = 0;
    watcher = new PolicyWatcher({
      file,
      logger: silentLogger(),
      metrics,
      onChange: (p) => changes.push(p),
      pollIntervalMs: 50,
      debounceMs: 20,
      settleMs: SETTLE_MS,
    });
  });

  afterEach(async () => {
    watcher?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const decides = (path: string): string => {
    if (watcher === undefined) throw new Error('no watcher');
    return decide(watcher.current(), request({ path })).decision;
  };

  it('ok/loads at start, then applies a valid change written in place', async () => {
    await watcher?.start();
    expect(decides('/one')).toBe('allow');
    await writeFile(file, policyText('/two'));
    await waitFor('the new policy', () => decides('/two') === 'allow');
    expect(decides('/one')).toBe('deny');
    expect(changes).toHaveLength(1);
    expect(await reloads(metrics, 'success')).toBe(1);
  });

  it('ok/applies a change made by atomic rename (how editors and ConfigMaps replace files)', async () => {
    await watcher?.start();
    const next = join(dir, '.policy.yaml.tmp');
    await writeFile(next, policyText('/three'));
    await rename(next, file);
    await waitFor('the renamed policy', () => decides('/three') === 'allow');
  });

  it('ok/the periodic stat alone picks up a change (fallback when fs.watch misses it)', async () => {
    watcher?.close();
    watcher = new PolicyWatcher({
      file,
      logger: silentLogger(),
      metrics,
      pollIntervalMs: 30,
      debounceMs: 10,
      settleMs: SETTLE_MS,
      fsWatch: false,
    });
    await watcher.start();
    await writeFile(file, policyText('/polled'));
    await waitFor('the polled policy', () => decides('/polled') === 'allow');
  });

  it('fail/a subscriber that throws does not stop later reloads (the new policy is in force either way)', async () => {
    watcher?.close();
    let calls = 0;
    watcher = new PolicyWatcher({
      file,
      logger: silentLogger(),
      metrics,
      onChange: () => {
        calls++;
        throw new Error('subscriber failed');
      },
      pollIntervalMs: 30,
      debounceMs: 10,
      settleMs: SETTLE_MS,
    });
    await watcher.start();
    await writeFile(file, policyText('/first'));
    await waitFor('the first change', () => decides('/first') === 'allow');
    await writeFile(file, policyText('/second'));
    await waitFor('the change after the failing subscriber', () => decides('/second') === 'allow');
    expect(calls).toBe(2);
  });

  it('fail/an invalid change keeps the old policy and counts a failure', async () => {
    await watcher?.start();
    const before = watcher?.current();
    await writeFile(file, `${policyText('/two')}    bogus: true\n`);
    await waitFor('the failed reload', async () => (await reloads(metrics, 'failure')) === 1);
    expect(watcher?.current()).toBe(before);
    expect(decides('/one')).toBe('allow');
    expect(changes).toHaveLength(0);
    // A later valid change still goes through.
    await writeFile(file, policyText('/four'));
    await waitFor('the fixed policy', () => decides('/four') === 'allow');
  });

  it('fail/an invalid file at start throws (the caller must fail closed)', async () => {
    await writeFile(file, 'apiVersion: nope\n');
    await expect(watcher?.start()).rejects.toSatisfy((e) => isMeshauthError(e, 'MESHAUTH_ERR_POLICY_INVALID'));
    expect(() => watcher?.current()).toThrow();
  });

  it('ok/close() stops watching', async () => {
    // A short settle time: the default (1 s) is longer than the window below, which then proved nothing.
    (await restartWatcher({ settleMs: 20 })).close();
    await writeFile(file, policyText('/two'));
    // A fixed wait for a negative (no reload to wait on): longer than several poll intervals, debounces and settle
    // times, nothing may change any more.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(decides('/one')).toBe('allow');
    expect(decides('/two')).toBe('deny');
    expect(await reloads(metrics, 'success')).toBe(0);
  });

  it('fail/a file caught half written is not applied: its valid prefix lacks the deny rule further down', async () => {
    // Found by an outside audit: `cat > policy.yaml`, kubectl cp and config tools truncate, then write; a prefix read
    // in between was applied, a policy wider than both the old file and the new one.
    const head = `apiVersion: meshauth.dev/v1\nkind: Policy\nrules:\n  - name: public\n    action: allow\n    to: { paths: ["/public/*"] }\n`;
    const deny = `  - name: no-secret\n    action: deny\n    to: { paths: ["/public/secret"] }\n`;
    const extra = `  - name: health\n    action: allow\n    to: { paths: ["/healthz"] }\n`;
    await writeFile(file, head + deny);
    await restartWatcher({ settleMs: 600 });
    expect(decides('/public/secret')).toBe('deny');
    const handle = await open(file, 'w');
    await handle.write(head);
    const seen = new Set<string>();
    // The writer pauses for 300 ms, half the settle time (a fixed pause on purpose: the half-written file must sit
    // there); poll the decision all along (bounded).
    for (let i = 0; i < 12; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      seen.add(decides('/public/secret'));
    }
    await handle.write(deny + extra);
    await handle.close();
    await waitFor('the whole new file', () => decides('/healthz') === 'allow');
    seen.add(decides('/public/secret'));
    expect([...seen]).toEqual(['deny']);
  });

  it('fail/a file left invalid is counted and logged once, however many change events find it again', async () => {
    // Found by an outside test: every write in the directory (a rotated certificate beside the policy, a log file)
    // re-judged the same invalid file, one failure and one error line per event (a log in the same directory fed
    // itself, one line a second).
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(
          ...chunk
            .toString()
            .split('\n')
            .filter((l) => l.includes('policy reload failed')),
        );
        done();
      },
    });
    const started = await restartWatcher({ logger: createLogger({ level: 'info', destination: sink }), settleMs: 20 });
    // Replaced by rename, so that no event can find the file half written (a different failure).
    const replace = async (text: string): Promise<void> => {
      await writeFile(`${file}.tmp`, text);
      await rename(`${file}.tmp`, file);
    };
    const invalid = `${policyText('/two')}    bogus: true\n`;
    await replace(invalid);
    await waitFor('the failed reload', async () => (await reloads(metrics, 'failure')) === 1);
    for (let i = 0; i < 3; i++) {
      await writeFile(join(dir, 'svid.pem'), `rotated ${i}`);
      await started.reload(); // what a change event ends in
    }
    expect(await reloads(metrics, 'failure')).toBe(1);
    expect(lines).toHaveLength(1);
    // A different failure is news: the file gone (once), then the same invalid text back after it.
    await rm(file);
    await started.reload();
    await started.reload();
    expect(await reloads(metrics, 'failure')).toBe(2);
    await replace(invalid);
    await started.reload();
    expect(await reloads(metrics, 'failure')).toBe(3);
    expect(lines).toHaveLength(3);
    expect(decides('/one')).toBe('allow');
    await replace(policyText('/four'));
    await started.reload();
    expect(decides('/four')).toBe('allow');
  });

  it('ok/reload() with unchanged content is not counted', async () => {
    await watcher?.start();
    await watcher?.reload();
    expect(await reloads(metrics, 'success')).toBe(0);
    expect(changes).toHaveLength(0);
  });
});
