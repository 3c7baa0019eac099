// PolicyWatcher.start() parses a text of PARSE_OFF_THREAD_FROM (16 KiB) or more on a thread of its own, as a reload
// does, and a smaller one in place (no thread start to pay). A thread that gives no judgement fails the start with
// MESHAUTH_ERR_POLICY_INVALID (reason parse_thread_failed) naming the file: with no policy the caller fails closed.
// Review finding: the first load parsed in place under the process's own heap bound, so a valid policy whose parse
// needed more than a container's memory limit left got the process killed by the kernel (exit 137) at every start,
// without a word; on the thread it runs out of the thread's own bound and the start says so.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PARSE_THREAD_FAILED } from '../../../src/authz/parse-policy-off-thread.js';
import { parsePolicy } from '../../../src/authz/policy/parse-policy.js';
import { PARSE_OFF_THREAD_FROM, PolicyWatcher } from '../../../src/authz/policy-watcher.js';
import { isMeshauthError, type MeshauthError } from '../../../src/errors/index.js';
import { Metrics } from '../../../src/telemetry/index.js';
import { type LogLines, logLines } from '../../helpers/log-lines.js';
import {
  ParseThreads,
  POLICY_HEAD,
  type PolicyFile,
  policyReloads,
  writePolicyFile,
} from '../../helpers/policy-reloads.js';
import { until } from '../../helpers/wait.js';

const CHANNEL = 'meshauth-test-start-parse-thread';
/** The real parsing thread's script (the tests run src/*.ts; the worker runs from dist/). */
const REAL_WORKER = new URL('../../../dist/src/authz/parse-policy-worker.js', import.meta.url);

/** Valid rules up to at least `bytes` UTF-16 units. */
function policyOf(bytes: number): { readonly text: string; readonly rules: number } {
  let text = POLICY_HEAD;
  let rules = 0;
  while (text.length < bytes) {
    text += `  - name: rule-${rules}\n    action: allow\n    to: { methods: [GET], paths: ["/items/${rules}/*"] }\n`;
    rules += 1;
  }
  return { text, rules };
}

async function refusal(promise: Promise<unknown>): Promise<MeshauthError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isMeshauthError(error)) throw new Error(`expected a MeshauthError, got ${String(error)}`);
  return error;
}

describe('PolicyWatcher.start(): where the first load is parsed', () => {
  const large = policyOf(PARSE_OFF_THREAD_FROM);
  const small = policyOf(PARSE_OFF_THREAD_FROM / 4);
  let policy: PolicyFile | undefined;
  let metrics: Metrics;
  let log: LogLines;
  let threads: ParseThreads;
  const watchers: PolicyWatcher[] = [];

  /** A watcher (no fs.watch, no polling) of a new file holding `text`, whose parsing thread is `parseWorker`. */
  async function watcherOf(text: string, parseWorker: URL): Promise<{ watcher: PolicyWatcher; file: string }> {
    policy = await writePolicyFile('meshauth-policy-start-', text);
    const watcher = new PolicyWatcher({
      file: policy.file,
      logger: log.logger,
      metrics,
      fsWatch: false,
      pollIntervalMs: 3_600_000,
      parseWorker,
    });
    watchers.push(watcher);
    return { watcher, file: policy.file };
  }

  beforeEach(() => {
    metrics = new Metrics();
    log = logLines('sidecar');
    threads = new ParseThreads(CHANNEL);
  });

  afterEach(async () => {
    for (const watcher of watchers.splice(0)) watcher.close();
    threads.close();
    await policy?.remove();
  });

  it('ok/a text under 16 KiB is parsed in place: no thread is started', async () => {
    expect(small.text.length).toBeLessThan(PARSE_OFF_THREAD_FROM);
    const { watcher } = await watcherOf(small.text, threads.script('throw new Error("parser crashed");'));
    expect((await watcher.start()).rules).toHaveLength(small.rules);
    expect(threads.started).toBe(0);
  });

  it('ok/a text of 16 KiB or more is parsed on a thread, then compiled and in force', async () => {
    const { watcher, file } = await watcherOf(
      large.text,
      threads.script(`await import(${JSON.stringify(REAL_WORKER)});`),
    );
    const loaded = await watcher.start();
    expect(threads.started).toBe(1);
    expect(loaded.rules).toHaveLength(large.rules);
    expect(watcher.current()).toBe(loaded);
    expect(log.find({ msg: 'policy loaded' })).toEqual([expect.objectContaining({ file, rules: large.rules })]);
  });

  it('fail/an invalid text of 16 KiB or more: the refusal parsePolicy gives, from the thread', async () => {
    const invalid = large.text.replace('action: allow', 'action: permit');
    const { watcher, file } = await watcherOf(invalid, threads.script(`await import(${JSON.stringify(REAL_WORKER)});`));
    const error = await refusal(watcher.start());
    expect(threads.started).toBe(1);
    let here: unknown;
    try {
      parsePolicy(invalid, file);
    } catch (e) {
      here = e;
    }
    expect({ code: error.code, message: error.message }).toEqual({
      code: 'MESHAUTH_ERR_POLICY_INVALID',
      message: (here as Error).message,
    });
  });

  for (const [name, then, said] of [
    ['fail/its thread crashes', 'throw new Error("parser crashed");', 'failed (parser crashed)'],
    [
      'fail/its thread answers something that is not a policy',
      'parentPort.postMessage({ ok: true, document: "allow all" });',
      'answered something that is neither a policy nor a refusal',
    ],
  ] as const) {
    it(`${name}: the start fails naming the file (no policy: the caller fails closed); nothing counted`, async () => {
      const { watcher, file } = await watcherOf(large.text, threads.script(then));
      const error = await refusal(watcher.start());
      expect({ code: error.code, reason: error.reason, message: error.message }).toEqual({
        code: 'MESHAUTH_ERR_POLICY_INVALID',
        reason: PARSE_THREAD_FAILED,
        message: `${file}: not judged: the policy parsing thread ${said}`,
      });
      expect(() => watcher.current()).toThrow('policy watcher used before start()');
      expect(await policyReloads(metrics, 'failure')).toBe(0);
      expect(log.find({ msg: 'policy loaded' })).toHaveLength(0);
    });
  }

  it('fail/close() during the start ends its parsing thread: the start rejects', async () => {
    const { watcher } = await watcherOf(large.text, threads.script('setInterval(() => {}, 1000);')); // never answers
    const starting = refusal(watcher.start());
    await until('the parsing thread to start', () => threads.started >= 1);
    watcher.close();
    expect((await starting).reason).toBe(PARSE_THREAD_FAILED);
    expect(() => watcher.current()).toThrow('policy watcher used before start()');
  });
});
