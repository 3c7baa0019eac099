// For tests of what one policy reload does: a policy file in a temporary directory, a PolicyWatcher of it whose only
// change event is reload() (no fs.watch, no periodic stat, no settle time: each call is one judgement), and the
// reloads counted by result; and policy texts of the size a reload must cope with.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BroadcastChannel } from 'node:worker_threads';
import { MAX_POLICY_BYTES } from '../../src/authz/load-policy-file.js';
import { PolicyWatcher, type PolicyWatcherOptions } from '../../src/authz/policy-watcher.js';
import type { Metrics } from '../../src/telemetry/index.js';

/** `meshauth_policy_reloads_total{result}` (0 before the first). */
export async function policyReloads(metrics: Metrics, result: string): Promise<number> {
  const data = await metrics.policyReloads.get();
  return data.values.find((v) => v.labels.result === result)?.value ?? 0;
}

export interface PolicyFile {
  /** `<a new temporary directory>/policy.yaml`. */
  readonly file: string;
  /** Removes the directory. */
  remove(): Promise<void>;
}

/** `text` written to policy.yaml in a new temporary directory named from `prefix`. */
export async function writePolicyFile(prefix: string, text: string): Promise<PolicyFile> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const file = join(dir, 'policy.yaml');
  await writeFile(file, text);
  return { file, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A PolicyWatcher (not started) that reads its file only when reload() is called. */
export function reloadOnlyWatcher(
  options: Omit<PolicyWatcherOptions, 'fsWatch' | 'settleMs' | 'pollIntervalMs'>,
): PolicyWatcher {
  return new PolicyWatcher({ ...options, fsWatch: false, settleMs: 0, pollIntervalMs: 3_600_000 });
}

/** What every policy text starts with, before its rules. */
export const POLICY_HEAD = 'apiVersion: meshauth.dev/v1\nkind: Policy\nrules:\n';

/**
 * Ten-line rules up to MAX_POLICY_BYTES (about 3,000 of them): what a large real policy looks like, valid, and its
 * parse takes seconds.
 */
export function largeRealPolicy(): { readonly text: string; readonly rules: number } {
  const parts = [POLICY_HEAD];
  let size = POLICY_HEAD.length;
  let rules = 0;
  for (;;) {
    const rule =
      `  - name: rule-${rules}\n    action: allow\n    from:\n      ids: ["spiffe://example.org/ns/n${rules}/sa/s"]\n` +
      `    to:\n      methods: [GET, POST]\n      paths: ["/api/items/${rules}/*", "/api/other/${rules}"]\n` +
      `      hosts: ["svc-${rules}.example.org"]\n    when:\n      sourceIps: ["10.${rules % 250}.0.0/16"]\n`;
    if (size + rule.length > MAX_POLICY_BYTES) break;
    parts.push(rule);
    size += rule.length;
    rules += 1;
  }
  return { text: parts.join(''), rules };
}

/** One rule whose path list fills the size bound: valid, and its parse needs far more heap than 1 MiB of text. */
export function heapHungryPolicy(): string {
  const open = `${POLICY_HEAD}  - name: many-paths\n    action: allow\n    to: { paths: [`;
  const count = Math.floor((MAX_POLICY_BYTES - open.length - 20) / 5);
  return `${open}${'"/a",'.repeat(count)}"/b"] }\n`;
}

/**
 * Parsing threads started by a watcher under test: each thread made by `script` says so on this counter's channel
 * before doing what it was given, so a test can tell whether (and how often) a text was parsed off-thread.
 */
export class ParseThreads {
  #count = 0;
  readonly #name: string;
  readonly #channel: BroadcastChannel;

  constructor(name: string) {
    this.#name = name;
    this.#channel = new BroadcastChannel(name);
    this.#channel.onmessage = () => {
      this.#count += 1;
    };
  }

  get started(): number {
    return this.#count;
  }

  /** A parsing thread's script that reports on this counter, then runs `then` (`parentPort` is in scope). */
  script(then: string): URL {
    const source =
      'import { BroadcastChannel, parentPort } from "node:worker_threads";' +
      `const started = new BroadcastChannel(${JSON.stringify(this.#name)}); started.postMessage(1); started.close();${then}`;
    return new URL(`data:text/javascript,${encodeURIComponent(source)}`);
  }

  close(): void {
    this.#channel.close();
  }
}
