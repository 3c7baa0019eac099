// Holds the current compiled policy and reloads it when the file changes. Not pure (fs, a thread per reload). A valid
// change is swapped in whole; an invalid one is logged and counted and the old policy stays.
// Change detection: fs.watch on the directory (editors and Kubernetes ConfigMaps replace files, which a watch on
// the file itself misses) plus a periodic stat as a fallback, both debounced, then a content comparison.
// A large file, at start as on a reload, parses and validates on a worker thread (parse-policy-off-thread.ts); only the
// compile runs on this one.
import { type FSWatcher, watch } from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage, MeshauthError } from '../errors/index.js';
import { fileVersions } from '../platform/index.js';
import type { Logger, Metrics } from '../telemetry/index.js';
import { type LoadedPolicy, readPolicyText } from './load-policy-file.js';
import { PARSE_THREAD_FAILED, parsePolicyOffThread } from './parse-policy-off-thread.js';
import { compilePolicy } from './policy/compile-policy.js';
import type { CompiledPolicy } from './policy/compiled-policy.js';
import { parsePolicy } from './policy/parse-policy.js';
import type { PolicyDocument } from './policy/schema.js';

export interface PolicyWatcherOptions {
  readonly file: string;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Called after a new policy was applied (not for the initial load). */
  readonly onChange?: ((policy: CompiledPolicy) => void) | undefined;
  /** Fallback stat interval; default 2,000 ms. */
  readonly pollIntervalMs?: number | undefined;
  /** Quiet time after a change event before reading; default 100 ms. */
  readonly debounceMs?: number | undefined;
  /**
   * How long new text must stay the same before it is applied; default 1,000 ms. A file rewritten in place can be
   * read half written, and a prefix can be a valid policy without the deny rules further down: wider than both the
   * old file and the new one. A rename over the file (what a ConfigMap update does) is never read half written.
   */
  readonly settleMs?: number | undefined;
  /** Use fs.watch besides the periodic stat (default true; false leaves only the fallback, for tests). */
  readonly fsWatch?: boolean | undefined;
  /**
   * A further check of a compiled policy by its user (e.g. TCP tunnels refuse HTTP-only rules): throws a
   * MESHAUTH_ERR_POLICY_INVALID. At start it fails the start; on reload the policy is refused like an invalid one.
   */
  readonly check?: ((policy: CompiledPolicy, file: string) => void) | undefined;
  /**
   * The mesh's trust domain name: a rule on another trust domain's IDs, which no peer can ever have, is refused like
   * an invalid policy (at start it fails the start; a reload with one keeps the previous policy).
   */
  readonly trustDomain?: string | undefined;
  /** The script that parses a large text (default parse-policy-worker.js); tests give one that fails. */
  readonly parseWorker?: URL | undefined;
  /**
   * A reloaded text of at least this many bytes (UTF-16 units) is parsed off this thread; default PARSE_OFF_THREAD_FROM.
   * The first load always uses PARSE_OFF_THREAD_FROM: this lets tests put a small reload on a failing thread after a
   * start that parsed in place.
   */
  readonly parseOffThreadFrom?: number | undefined;
}

/**
 * Texts shorter than this are parsed on this thread: a policy of a few dozen rules parses in tens of milliseconds
 * (at most about 0.25 s for 16 KiB of the worst shapes within the bounds), less than starting a thread with its own
 * copy of yaml and zod costs (0.3–1.3 s here), and most policies are that small.
 */
export const PARSE_OFF_THREAD_FROM = 16 * 1024;

export class PolicyWatcher {
  readonly #file: string;
  readonly #logger: Logger;
  readonly #metrics: Metrics;
  readonly #onChange: ((policy: CompiledPolicy) => void) | undefined;
  readonly #check: ((policy: CompiledPolicy, file: string) => void) | undefined;
  readonly #trustDomain: string | undefined;
  readonly #pollIntervalMs: number;
  readonly #debounceMs: number;
  readonly #settleMs: number;
  readonly #fsWatch: boolean;
  readonly #parseWorker: URL | undefined;
  readonly #parseOffThreadFrom: number;
  /** Aborted by close(): a parse still running on its thread is ended rather than left to finish for nothing. */
  readonly #closing = new AbortController();
  #current: LoadedPolicy | undefined;
  /**
   * What the last failed reload met (`text:` the content refused, `unjudged:` the content its parsing thread failed
   * on, or `error:` the read error's code), until a reload succeeds: a change event that finds the same thing again
   * is not counted and logged again, nor judged again unless it is `unjudged:`. Any write in the directory is an
   * event (a rotated certificate next to the policy, a log file), so a file left invalid was counted and logged once
   * per event.
   */
  #failedOn: string | undefined;
  #statSignature = '';
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #reloading: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(options: PolicyWatcherOptions) {
    this.#file = options.file;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#onChange = options.onChange;
    this.#check = options.check;
    this.#trustDomain = options.trustDomain;
    this.#pollIntervalMs = options.pollIntervalMs ?? 2_000;
    this.#debounceMs = options.debounceMs ?? 100;
    this.#settleMs = options.settleMs ?? 1_000;
    this.#fsWatch = options.fsWatch ?? true;
    this.#parseWorker = options.parseWorker;
    this.#parseOffThreadFrom = options.parseOffThreadFrom ?? PARSE_OFF_THREAD_FROM;
  }

  /**
   * Loads the file (throws if it is unreadable or invalid, or if its parsing thread gives no judgement: with no policy,
   * the caller must fail closed), then watches. close() during it ends a parse on its thread and start() rejects.
   */
  async start(): Promise<CompiledPolicy> {
    if (this.#current !== undefined) return this.#current.policy;
    this.#statSignature = this.#stat();
    const text = await readPolicyText(this.#file);
    // A large text goes to a thread as on a reload, though nothing is served yet: the thread's heap bound is what the
    // container's memory limit leaves, the main thread's is the process's own. Parsed in place, a valid policy whose
    // parse needs more than the limit leaves got the process killed by the kernel without a word, at every restart;
    // on the thread it runs out of its bound and the start fails naming the file and what to change.
    const loaded = this.#compiled(text, await this.#parse(text, PARSE_OFF_THREAD_FROM));
    this.#check?.(loaded.policy, this.#file);
    this.#current = loaded;
    this.#logger.info(
      { file: this.#file, rules: loaded.policy.rules.length, mode: loaded.policy.mode },
      'policy loaded',
    );
    if (this.#closed) return loaded.policy;
    if (this.#fsWatch) this.#watch();
    this.#poll = setInterval(() => this.#pollOnce(), this.#pollIntervalMs);
    this.#poll.unref();
    return loaded.policy;
  }

  #watch(): void {
    try {
      this.#watcher = watch(dirname(this.#file), { persistent: false }, () => this.#schedule());
      this.#watcher.on('error', (error) => {
        this.#logger.warn({ file: this.#file, err: error }, 'policy watch failed; relying on periodic checks');
        this.#watcher?.close();
        this.#watcher = undefined;
      });
    } catch (error) {
      this.#logger.warn({ file: this.#file, err: error }, 'policy watch unavailable; relying on periodic checks');
    }
  }

  /** The policy to use for this request; call it per request, never cache it. */
  current(): CompiledPolicy {
    if (this.#current === undefined) {
      throw new MeshauthError('MESHAUTH_ERR_POLICY_INVALID', 'policy watcher used before start()', {
        reason: 'not_started',
      });
    }
    return this.#current.policy;
  }

  /** Re-reads the file now (also what change events end in). Resolves once the attempt is over. */
  reload(): Promise<void> {
    this.#reloading = this.#reloading.then(() => this.#reloadOnce());
    return this.#reloading;
  }

  close(): void {
    this.#closed = true;
    this.#closing.abort();
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#poll !== undefined) clearInterval(this.#poll);
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
    this.#poll = undefined;
    this.#debounce = undefined;
  }

  /**
   * Reloads once the burst of events that this one starts has had its debounce time. Counted from the first event,
   * not restarted by later ones: events for every file of the directory arrive here (a ConfigMap's swap renames
   * `..data`, not the policy file), and a sibling file written more often than the debounce time used to hold
   * every change of the policy back, the periodic check's included, with no counter or line saying so.
   */
  #schedule(): void {
    if (this.#closed || this.#debounce !== undefined) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = undefined;
      void this.reload();
    }, this.#debounceMs);
    this.#debounce.unref();
  }

  #pollOnce(): void {
    if (this.#closed) return;
    if (this.#stat() !== this.#statSignature) this.#schedule();
  }

  async #reloadOnce(): Promise<void> {
    if (this.#closed || this.#current === undefined) return;
    this.#statSignature = this.#stat();
    let text: string;
    try {
      text = await readPolicyText(this.#file);
    } catch (error) {
      this.#fail(error, `error:${errorMessage(error)}`);
      return;
    }
    if (this.#closed) return;
    if (text === this.#current.text) {
      this.#failedOn = undefined; // back to the policy in force: a later bad write is news again
      return;
    }
    if (`text:${text}` === this.#failedOn) return;
    if (this.#settleMs > 0) {
      await new Promise((settled) => setTimeout(settled, this.#settleMs).unref());
      let again: string;
      try {
        again = await readPolicyText(this.#file);
      } catch (error) {
        this.#fail(error, `error:${errorMessage(error)}`);
        return;
      }
      if (this.#closed) return;
      if (again !== text) {
        // Still being written: judge it once it has settled.
        this.#schedule();
        return;
      }
    }
    let loaded: LoadedPolicy;
    try {
      // Seconds of yaml parsing for a large file (load-policy-file.ts, MAX_POLICY_BYTES) on another thread: requests
      // and health probes are served meanwhile, under the policy in force. The compile stays here: its result holds
      // regular expressions and functions, which cannot cross threads.
      const document = await this.#parse(text, this.#parseOffThreadFrom);
      if (this.#closed) return;
      loaded = this.#compiled(text, document);
      this.#check?.(loaded.policy, this.#file);
    } catch (error) {
      if (this.#closed) return;
      // A thread that gave no judgement (could not start, crashed) says nothing of the text: the next change event
      // tries it again, where a refused text is only judged again once it changes. Either is logged once.
      const unjudged = error instanceof MeshauthError && error.reason === PARSE_THREAD_FAILED;
      this.#fail(error, `${unjudged ? 'unjudged' : 'text'}:${text}`);
      return;
    }
    this.#current = loaded;
    this.#failedOn = undefined;
    this.#metrics.policyReloads.inc({ result: 'success' });
    this.#logger.info(
      { file: this.#file, rules: loaded.policy.rules.length, mode: loaded.policy.mode },
      'policy reloaded',
    );
    try {
      this.#onChange?.(loaded.policy);
    } catch (error) {
      // The new policy is in force either way; a failing subscriber must not stop later reloads.
      this.#logger.error({ file: this.#file, error: String(error) }, 'policy change subscriber failed');
    }
  }

  /** The policy of a parsed text, compiled here: its rules hold regular expressions and functions. */
  #compiled(text: string, document: PolicyDocument): LoadedPolicy {
    return { file: this.#file, text, document, policy: compilePolicy(document) };
  }

  /** parsePolicy of `text`: on this thread below `offThreadFrom` UTF-16 units, else on a thread of its own. */
  async #parse(text: string, offThreadFrom: number): Promise<PolicyDocument> {
    if (text.length < offThreadFrom) return parsePolicy(text, this.#file, this.#trustDomain);
    return parsePolicyOffThread(text, this.#file, this.#trustDomain, {
      signal: this.#closing.signal,
      script: this.#parseWorker,
    });
  }

  #fail(error: unknown, on: string): void {
    if (on === this.#failedOn) return;
    this.#failedOn = on;
    this.#metrics.policyReloads.inc({ result: 'failure' });
    const message = errorMessage(error);
    const code = error instanceof MeshauthError ? error.code : undefined;
    this.#logger.error({ file: this.#file, code, error: message }, 'policy reload failed; keeping the previous policy');
  }

  #stat(): string {
    return fileVersions([this.#file], { ctime: true });
  }
}
