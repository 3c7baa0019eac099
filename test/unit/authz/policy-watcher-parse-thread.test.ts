// A reload whose parsing thread gives no judgement (it crashes, or answers something that is not a policy) is a
// failed reload like an invalid file: the policy in force stays, one failure is counted and one error line names the
// file and MESHAUTH_ERR_POLICY_INVALID; the process goes on. Unlike a refused text, the same text is tried again on
// the next change event (the thread said nothing about it), without counting or logging the failure again. Review
// finding: the reload parsed on the event loop; it now parses on a worker thread, which can fail on its own.
import { writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decide } from '../../../src/authz/decide.js';
import type { PolicyWatcher } from '../../../src/authz/policy-watcher.js';
import { Metrics } from '../../../src/telemetry/index.js';
import { type LogLines, logLines } from '../../helpers/log-lines.js';
import {
  ParseThreads,
  type PolicyFile,
  reloadOnlyWatcher,
  policyReloads as reloads,
  writePolicyFile,
} from '../../helpers/policy-reloads.js';
import { until } from '../../helpers/wait.js';
import { request } from './authz-fixtures.js';

const policyText = (path: string): string =>
  `apiVersion: meshauth.dev/v1\nkind: Policy\nrules:\n  - name: allow-${path.slice(1)}\n    action: allow\n    to: { paths: ["${path}"] }\n`;

const CHANNEL = 'meshauth-test-parse-thread-started';

describe('PolicyWatcher: a parsing thread that gives no judgement', () => {
  let policy: PolicyFile;
  let file: string;
  let metrics: Metrics;
  let log: LogLines;
  let threads: ParseThreads;

  /**
   * A watcher of `file` (reload() is the change event) whose parsing thread does `then` (ParseThreads.script), started for
   * texts of `parseOffThreadFrom` bytes or more (default: the shipped bound).
   */
  function watcherWith(then: string, parseOffThreadFrom?: number): PolicyWatcher {
    return reloadOnlyWatcher({
      file,
      logger: log.logger,
      metrics,
      parseWorker: threads.script(then),
      parseOffThreadFrom,
    });
  }

  beforeEach(async () => {
    policy = await writePolicyFile('meshauth-policy-thread-', policyText('/one'));
    file = policy.file;
    metrics = new Metrics();
    log = logLines('sidecar');
    threads = new ParseThreads(CHANNEL);
  });

  afterEach(async () => {
    threads.close();
    await policy.remove();
  });

  for (const [name, then, said] of [
    ['fail/it crashes', 'throw new Error("parser crashed");', 'failed (parser crashed)'],
    [
      'fail/it answers something that is not a policy',
      'parentPort.postMessage({ ok: true, document: "allow everything" });',
      'answered something that is neither a policy nor a refusal',
    ],
  ] as const) {
    it(`${name} → the policy in force stays, one failure counted and logged; tried again on the next event`, async () => {
      const watcher = watcherWith(then, 0);
      try {
        const before = await watcher.start(); // parsed on this thread: the failing one only serves reloads
        await writeFile(file, policyText('/two'));
        await watcher.reload();
        expect(watcher.current()).toBe(before);
        expect(decide(watcher.current(), request({ path: '/one' })).decision).toBe('allow');
        expect(decide(watcher.current(), request({ path: '/two' })).decision).toBe('deny');
        expect(await reloads(metrics, 'failure')).toBe(1);
        expect(await reloads(metrics, 'success')).toBe(0);
        const failed = log.find({ msg: 'policy reload failed; keeping the previous policy' });
        expect(failed).toHaveLength(1);
        expect(failed[0]).toMatchObject({
          level: 'error',
          file,
          code: 'MESHAUTH_ERR_POLICY_INVALID',
          error: `${file}: not judged: the policy parsing thread ${said}`,
        });
        // The same text at the next event: a thread is started again (a refused text would not be parsed again),
        // and the same failure is neither counted nor logged twice.
        await until('the first thread to report', () => threads.started >= 1);
        await watcher.reload();
        await until('a second thread for the same text', () => threads.started >= 2);
        expect(await reloads(metrics, 'failure')).toBe(1);
        expect(log.find({ msg: 'policy reload failed; keeping the previous policy' })).toHaveLength(1);
        expect(watcher.current()).toBe(before);
      } finally {
        watcher.close();
      }
    });
  }

  it('ok/a text under parseOffThreadFrom is parsed in place: no thread is started, the reload applies it', async () => {
    const watcher = watcherWith('throw new Error("parser crashed");'); // would fail the reload if it were started
    try {
      await watcher.start();
      await writeFile(file, policyText('/two'));
      await watcher.reload();
      expect(decide(watcher.current(), request({ path: '/two' })).decision).toBe('allow');
      expect(await reloads(metrics, 'success')).toBe(1);
      expect(threads.started).toBe(0);
    } finally {
      watcher.close();
    }
  });

  it('ok/close() during a reload ends its parsing thread: the reload is over, nothing counted or logged', async () => {
    const watcher = watcherWith('setInterval(() => {}, 1000);', 0); // never answers
    const before = await watcher.start();
    await writeFile(file, policyText('/two'));
    const reloading = watcher.reload();
    await until('the parsing thread to start', () => threads.started >= 1);
    watcher.close();
    await reloading;
    expect(watcher.current()).toBe(before);
    expect(await reloads(metrics, 'failure')).toBe(0);
    expect(log.find({ msg: 'policy reload failed; keeping the previous policy' })).toHaveLength(0);
  });
});
