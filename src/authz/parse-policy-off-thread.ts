// A policy text parsed and validated (parsePolicy) on a worker thread of its own, for a reload: yaml's parser holds
// the thread it runs on for seconds on a file within MAX_POLICY_BYTES, and the sidecar's and the gateway's main thread
// is their data plane. One worker per call, ended once it answers. Not pure (a thread). Compiling the document it
// answers (regexps, functions) is the caller's, on its own thread.
import { Worker } from 'node:worker_threads';
import { errorMessage, isErrorCode, MeshauthError, type MeshauthErrorOptions } from '../errors/index.js';
import { workerScriptUrl } from '../platform/worker-script.js';
import { parseThreadHeapMb } from './parse-thread-heap.js';
import type { PolicyDocument } from './policy/schema.js';

/** What the worker is given (workerData). */
export interface ParseJob {
  readonly text: string;
  readonly file: string;
  readonly trustDomain: string | undefined;
}

/** What the worker answers: the document (plain data), or the refusal as fields (an Error loses its own fields). */
export type ParseAnswer =
  | { readonly ok: true; readonly document: PolicyDocument }
  | {
      readonly ok: false;
      /** The MeshauthError's code; undefined for any other error. */
      readonly code: string | undefined;
      readonly message: string;
      readonly reason: string | undefined;
      readonly detail: Readonly<Record<string, unknown>> | undefined;
    };

export interface ParseOffThreadOptions {
  /** Aborting ends the worker and rejects (the watcher closing mid-reload). */
  readonly signal?: AbortSignal | undefined;
  /** The worker script; default parse-policy-worker.js next to this module. Tests give one that fails. */
  readonly script?: URL | undefined;
  /**
   * The worker's old-generation bound in MiB; default what the process's memory limit leaves (parseThreadHeapMb),
   * none without a limit.
   */
  readonly heapMb?: number | undefined;
}

/** The reason of the MESHAUTH_ERR_POLICY_INVALID thrown when the worker gave no judgement of the text. */
export const PARSE_THREAD_FAILED = 'parse_thread_failed';

/**
 * parsePolicy(text, file, trustDomain) on a worker thread: the document, or the same MESHAUTH_ERR_POLICY_INVALID
 * (message, reason, detail) parsePolicy throws. A worker that cannot start, crashes, exits without answering or
 * answers something else is a MESHAUTH_ERR_POLICY_INVALID with reason PARSE_THREAD_FAILED, never a crash here.
 */
export function parsePolicyOffThread(
  text: string,
  file: string,
  trustDomain: string | undefined,
  options: ParseOffThreadOptions = {},
): Promise<PolicyDocument> {
  const {
    signal,
    script = workerScriptUrl('./parse-policy-worker.js', import.meta.url),
    heapMb = parseThreadHeapMb(process.constrainedMemory?.(), process.memoryUsage.rss()),
  } = options;
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(threadFailed(file, 'was ended (the policy watcher was closed)'));
      return;
    }
    const job: ParseJob = { text, file, trustDomain };
    let worker: Worker;
    try {
      worker = new Worker(script, {
        workerData: job,
        ...(heapMb === undefined ? {} : { resourceLimits: { maxOldGenerationSizeMb: heapMb } }),
      });
    } catch (error) {
      reject(threadFailed(file, `could not start (${errorMessage(error)})`));
      return;
    }
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', abandon);
      // Its answer is in; whatever it still does is of no use (and an abandoned parse may run for seconds).
      void worker.terminate();
      outcome();
    };
    const abandon = (): void => settle(() => reject(threadFailed(file, 'was ended (the policy watcher was closed)')));
    worker.on('message', (answer: unknown) =>
      settle(() => {
        try {
          resolve(documentOf(answer, file));
        } catch (error) {
          reject(error);
        }
      }),
    );
    worker.on('messageerror', (error) =>
      settle(() => reject(threadFailed(file, `answered something it could not pass back (${errorMessage(error)})`))),
    );
    worker.on('error', (error) => settle(() => reject(threadFailed(file, failure(error, heapMb)))));
    worker.on('exit', (code) => settle(() => reject(threadFailed(file, `exited (code ${code}) without an answer`))));
    // Not unref'd: the caller awaits the answer (a process with nothing else to do must not exit under it), and
    // the watcher's close() aborts a parse it no longer wants.
    signal?.addEventListener('abort', abandon, { once: true });
  });
}

/** Why the thread failed; running out of its heap says how much it had and what to change. */
function failure(error: unknown, heapMb: number | undefined): string {
  if ((error as { code?: unknown } | null)?.code !== 'ERR_WORKER_OUT_OF_MEMORY')
    return `failed (${errorMessage(error)})`;
  const bound = heapMb === undefined ? "V8's heap bound" : `its ${heapMb} MiB heap, what the memory limit left`;
  return `ran out of memory (${bound}): split the policy or raise the container's memory limit`;
}

/** The document of a well-formed answer; the refusal it carries, thrown; anything else is a failed thread. */
function documentOf(answer: unknown, file: string): PolicyDocument {
  if (typeof answer !== 'object' || answer === null)
    throw threadFailed(file, 'answered something that is neither a policy nor a refusal');
  const { ok, document, code, message, reason, detail } = answer as Record<string, unknown>;
  if (ok === true && isPolicyShaped(document)) return document as PolicyDocument;
  if (ok === false && typeof message === 'string') {
    const options: MeshauthErrorOptions = {
      reason: typeof reason === 'string' ? reason : 'parse_error',
      ...(isRecord(detail) ? { detail } : {}),
    };
    // Not a MeshauthError there (a bug in the parse): its message, under the code every refused reload has.
    const known = typeof code === 'string' && isErrorCode(code) ? code : 'MESHAUTH_ERR_POLICY_INVALID';
    throw new MeshauthError(known, message, options);
  }
  throw threadFailed(file, 'answered something that is neither a policy nor a refusal');
}

/** The top of what parsePolicy returns: enough to know the answer is a document and not something else. */
function isPolicyShaped(value: unknown): boolean {
  if (!isRecord(value)) return false;
  return value.apiVersion === 'meshauth.dev/v1' && value.kind === 'Policy' && Array.isArray(value.rules);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function threadFailed(file: string, what: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_POLICY_INVALID', `${file}: not judged: the policy parsing thread ${what}`, {
    reason: PARSE_THREAD_FAILED,
  });
}
