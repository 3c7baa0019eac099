// parsePolicyOffThread: a policy text parsed and validated on a worker thread gives what parsePolicy gives on this
// one (the document, or the same refusal: code, message, reason, detail), and a worker that cannot give a judgement
// (does not start, crashes, exits, answers something else, is abandoned) is a MESHAUTH_ERR_POLICY_INVALID with reason
// parse_thread_failed, never a crash. Review finding: a reload parsed its text on the event loop (seconds for a file
// within the 1 MiB bound); these are the pieces the reload now runs on a thread. The real worker runs from dist/.
import { describe, expect, it } from 'vitest';
import { PARSE_THREAD_FAILED, parsePolicyOffThread } from '../../../src/authz/parse-policy-off-thread.js';
import { parsePolicy } from '../../../src/authz/policy/parse-policy.js';
import { isMeshauthError, MeshauthError } from '../../../src/errors/index.js';

const FILE = '/etc/meshauth/policy.yaml';
const VALID = [
  'apiVersion: meshauth.dev/v1',
  'kind: Policy',
  'metadata: { name: shop }',
  'rules:',
  '  - name: orders-read',
  '    action: allow',
  '    from: { ids: ["spiffe://example.org/ns/shop/sa/frontend"] }',
  '    to: { methods: [GET], paths: ["/orders/*"], ports: [8080] }',
  '    when:',
  '      user: { claims: { tenant: { in: [acme, 7, true] } } }',
  '      headers: { x-env: [prod] }',
  '      time: { from: "08:00", to: "18:00", timeZone: Europe/Berlin }',
  '',
].join('\n');

/** A worker script made of `source` (an ES module): what a broken or hostile parsing thread does. */
function script(source: string): URL {
  return new URL(`data:text/javascript,${encodeURIComponent(source)}`);
}

/** What parsePolicy throws on this thread for `text`. */
function refusalHere(text: string, trustDomain?: string): MeshauthError {
  try {
    parsePolicy(text, FILE, trustDomain);
  } catch (error) {
    if (error instanceof MeshauthError) return error;
  }
  throw new Error('parsePolicy accepted the text');
}

async function refusalThere(promise: Promise<unknown>): Promise<MeshauthError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isMeshauthError(error)) throw new Error(`expected a MeshauthError, got ${String(error)}`);
  return error;
}

describe('parsePolicyOffThread', () => {
  it('ok/a valid policy: the document parsePolicy gives on this thread', async () => {
    const document = await parsePolicyOffThread(VALID, FILE, 'example.org');
    expect(document).toEqual(parsePolicy(VALID, FILE, 'example.org'));
  });

  for (const [name, text, trustDomain] of [
    ['fail/an unknown field', VALID.replace('    action: allow', '    action: allow\n    bogus: 1'), undefined],
    ['fail/YAML that does not parse (a duplicate key)', `${VALID}kind: Policy\n`, undefined],
    ['fail/a rule on another trust domain', VALID, 'other.org'],
    ['fail/an empty file', '', undefined],
  ] as const) {
    it(`${name}: the refusal parsePolicy throws, with its code, message, reason and detail`, async () => {
      const here = refusalHere(text, trustDomain);
      const there = await refusalThere(parsePolicyOffThread(text, FILE, trustDomain));
      expect(there.code).toBe('MESHAUTH_ERR_POLICY_INVALID');
      expect({ message: there.message, reason: there.reason, detail: there.detail }).toEqual({
        message: here.message,
        reason: here.reason,
        detail: here.detail,
      });
    });
  }

  for (const [name, source, said] of [
    ['fail/a thread that throws before it answers', 'throw new Error("boom");', 'failed (boom)'],
    ['fail/a thread that exits without an answer', 'process.exit(3);', 'exited (code 3) without an answer'],
    [
      'fail/a thread that answers a number',
      'import { parentPort } from "node:worker_threads"; parentPort.postMessage(42);',
      'answered something that is neither a policy nor a refusal',
    ],
    [
      'fail/a thread that answers ok with something that is not a policy',
      'import { parentPort } from "node:worker_threads"; parentPort.postMessage({ ok: true, document: { rules: 1 } });',
      'answered something that is neither a policy nor a refusal',
    ],
    [
      'fail/a thread that answers a refusal without a message',
      'import { parentPort } from "node:worker_threads"; parentPort.postMessage({ ok: false, code: "X" });',
      'answered something that is neither a policy nor a refusal',
    ],
  ] as const) {
    it(`${name}: not judged, MESHAUTH_ERR_POLICY_INVALID (${PARSE_THREAD_FAILED})`, async () => {
      const error = await refusalThere(parsePolicyOffThread(VALID, FILE, undefined, { script: script(source) }));
      expect(error.code).toBe('MESHAUTH_ERR_POLICY_INVALID');
      expect(error.reason).toBe(PARSE_THREAD_FAILED);
      expect(error.message).toBe(`${FILE}: not judged: the policy parsing thread ${said}`);
    });
  }

  it('fail/a worker script that does not exist: not judged, no crash', async () => {
    const missing = new URL('file:///nonexistent/meshauth/parse-policy-worker.js');
    const error = await refusalThere(parsePolicyOffThread(VALID, FILE, undefined, { script: missing }));
    expect(error.reason).toBe(PARSE_THREAD_FAILED);
    expect(error.message).toMatch(new RegExp(`^${FILE}: not judged: the policy parsing thread failed \\(`));
  });

  it('fail/a thread that runs out of its heap bound: not judged, the message says how much it had', async () => {
    const hungry = script('const kept = []; for (;;) kept.push(new Array(100_000).fill(1.5));');
    const error = await refusalThere(parsePolicyOffThread(VALID, FILE, undefined, { script: hungry, heapMb: 16 }));
    expect(error.reason).toBe(PARSE_THREAD_FAILED);
    expect(error.message).toBe(
      `${FILE}: not judged: the policy parsing thread ran out of memory (its 16 MiB heap, what the memory limit ` +
        "left): split the policy or raise the container's memory limit",
    );
  });

  it('fail/a refusal under a code the registry does not have: MESHAUTH_ERR_POLICY_INVALID with its message', async () => {
    const source =
      'import { parentPort } from "node:worker_threads";' +
      'parentPort.postMessage({ ok: false, code: "NOPE", message: "it broke", reason: 7, detail: [1] });';
    const error = await refusalThere(parsePolicyOffThread(VALID, FILE, undefined, { script: script(source) }));
    expect({ code: error.code, message: error.message, reason: error.reason, detail: error.detail }).toEqual({
      code: 'MESHAUTH_ERR_POLICY_INVALID',
      message: 'it broke',
      reason: 'parse_error',
      detail: undefined,
    });
  });

  it('fail/abandoned (the watcher closing): a thread that never answers is ended and the call rejects', async () => {
    const never = script('setInterval(() => {}, 1000);');
    const abandon = new AbortController();
    const parsing = refusalThere(
      parsePolicyOffThread(VALID, FILE, undefined, { script: never, signal: abandon.signal }),
    );
    abandon.abort();
    const error = await parsing;
    expect(error.reason).toBe(PARSE_THREAD_FAILED);
    expect(error.message).toBe(
      `${FILE}: not judged: the policy parsing thread was ended (the policy watcher was closed)`,
    );
    // Already abandoned: no thread is started at all.
    const late = await refusalThere(parsePolicyOffThread(VALID, FILE, undefined, { signal: abandon.signal }));
    expect(late.reason).toBe(PARSE_THREAD_FAILED);
  });
});
