// Reads, validates and compiles a policy file (the I/O half of the Policy Administration Point). Not pure.
import { fileErrnoMessage } from '../config/file-errno.js';
import { decodeUtf8, invalidUtf8Text } from '../config/utf8-text.js';
import { MeshauthError } from '../errors/index.js';
import { readRegularFile } from '../platform/index.js';
import { compilePolicy } from './policy/compile-policy.js';
import type { CompiledPolicy } from './policy/compiled-policy.js';
import { parsePolicy } from './policy/parse-policy.js';
import type { PolicyDocument } from './policy/schema.js';

export interface LoadedPolicy {
  readonly file: string;
  readonly text: string;
  readonly document: PolicyDocument;
  readonly policy: CompiledPolicy;
}

/**
 * A policy file larger than this is refused. A real policy is a few hundred KiB at most (3,000 ten-line rules:
 * 0.9 MiB). The YAML parse of 1 MiB, on Node 20 on a shared machine: 2 s for ten-line rules, 5-6 s for a flat list of
 * half a million items, 13-14 s for lines of lists nested 60 deep (yaml's own parser; the nesting bound is 64).
 * Aliases would cost more (a minute for 48,000): past 100, the file is refused at the 101st (config/yaml-text.ts).
 * The watcher therefore parses and validates a large file, at start and on a reload, on a worker thread
 * (parse-policy-off-thread.ts); only its compile (0.25 s for 3,000 rules) holds the event loop.
 */
export const MAX_POLICY_BYTES = 1024 * 1024;

/** `trustDomain`: the mesh's, when known; a rule naming another one is refused (policy/foreign-ids.ts). */
export async function loadPolicyFile(file: string, trustDomain?: string): Promise<LoadedPolicy> {
  const text = await readPolicyText(file);
  return compilePolicyText(text, file, trustDomain);
}

/** Parses, validates and compiles on the calling thread: for the CLI (the watcher parses a large file on a thread). */
export function compilePolicyText(text: string, file: string, trustDomain?: string): LoadedPolicy {
  const document = parsePolicy(text, file, trustDomain);
  return { file, text, document, policy: compilePolicy(document) };
}

/**
 * The policy file's text. Read as a bounded regular file (platform/regular-file.ts): a FIFO at the path used to hang
 * `policy validate`, the sidecar's start and, on a reload, every later reload behind it; a device such as /dev/zero
 * was read to Node's 2 GiB buffer limit before the size check ran. Decoded strictly (config/utf8-text.ts): bytes
 * that are not UTF-8 are MESHAUTH_ERR_POLICY_INVALID, so a reload keeps the policy in force. `what` names the file
 * in messages (`policy test --cases` reads its cases file the same way).
 */
export async function readPolicyText(file: string, what = 'policy file'): Promise<string> {
  let bytes: Buffer;
  try {
    bytes = readRegularFile(file, MAX_POLICY_BYTES).bytes;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    if (code === 'EFBIG') {
      throw new MeshauthError('MESHAUTH_ERR_POLICY_INVALID', `${file}: larger than ${MAX_POLICY_BYTES} bytes`, {
        reason: 'too_large',
      });
    }
    throw new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `cannot read ${what} ${file}: ${fileErrnoMessage(error)}`, {
      reason: 'unreadable',
      cause: error,
    });
  }
  const decoded = decodeUtf8(bytes);
  if (!decoded.ok) {
    throw new MeshauthError('MESHAUTH_ERR_POLICY_INVALID', `${file}: ${invalidUtf8Text(decoded)}`, {
      reason: 'not_utf8',
      detail: { file, offset: decoded.offset, line: decoded.line },
    });
  }
  return decoded.text;
}
