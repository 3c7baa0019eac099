// The worker of parse-policy-off-thread.ts: parses and validates one policy text (parsePolicy) and posts back the
// document, which is plain data, or the refusal as fields; then it ends. Compiles nothing (the caller's thread does).
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage, MeshauthError } from '../errors/index.js';
import type { ParseAnswer, ParseJob } from './parse-policy-off-thread.js';
import { parsePolicy } from './policy/parse-policy.js';

function answer(job: ParseJob): ParseAnswer {
  try {
    return { ok: true, document: parsePolicy(job.text, job.file, job.trustDomain) };
  } catch (error) {
    if (error instanceof MeshauthError) {
      return { ok: false, code: error.code, message: error.message, reason: error.reason, detail: error.detail };
    }
    const message = errorMessage(error);
    return { ok: false, code: undefined, message, reason: undefined, detail: undefined };
  }
}

const result = answer(workerData as ParseJob);
try {
  parentPort?.postMessage(result);
} catch {
  // A detail that cannot be cloned: the refusal without it still says what is wrong.
  parentPort?.postMessage(result.ok ? result : { ...result, detail: undefined });
}
