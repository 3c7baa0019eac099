// A setting that names the file of a secret (`ca.token`, a private key) whose value is the secret itself: a join
// token pasted where its path belongs, as STEP_TOKEN-style tools take it. Refused by the schema, and never repeated
// in a message: the agent logged `ca.token: token file <the token>: cannot be read` at every bootstrap attempt, and
// whoever read the logs could redeem the unspent token for the workload's identity.
import { z } from 'zod';

/** A JWS or JWE in compact form (a Kubernetes service-account token, an OIDC token): `eyJ` is `{"` in base64url. */
const JWT = /^eyJ[\w-]*(\.[\w-]*){2,4}$/;
/** 32 or more base64(url) characters with neither `/` nor `.`: a join token or a random key, not a file name. */
const BASE64_RUN = /^[\w+-]{32,}={0,2}$/;
/** A PEM block: a key or certificate pasted whole. */
const PEM = /-----BEGIN [A-Z0-9 ]+-----/;

/** Whether `value` is a credential rather than a file path (a long file name in the working directory: `./name`). */
export function looksLikeSecret(value: string): boolean {
  const trimmed = value.trim();
  return JWT.test(trimmed) || BASE64_RUN.test(trimmed) || PEM.test(trimmed);
}

/** What stands in a message for a value that looksLikeSecret. */
export const WITHHELD_PATH = '<value withheld: not a path>';

/** `path` as a message may show it: itself, or WITHHELD_PATH. */
export function shownPath(path: string): string {
  return looksLikeSecret(path) ? WITHHELD_PATH : path;
}

/**
 * The cause of a failed read of `path`, as an error may carry it to the log: itself, or, when the path is withheld,
 * a new Error with its errno code alone (Node's own message names the path: `ENOENT: …, open '<path>'`).
 */
export function shownCause(path: string, cause: unknown): unknown {
  if (!looksLikeSecret(path)) return cause;
  const code = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : 'error';
  return Object.assign(new Error(code), { code });
}

/**
 * The schema of a path setting whose file holds `holding` (`the token`, `the private key`): a non-empty string that
 * is not a credential. The message names neither the value nor any part of it.
 */
export function secretFilePath(holding: string) {
  return z
    .string()
    .min(1)
    .refine((value) => !looksLikeSecret(value), {
      message: `expected the path of a file holding ${holding}, not ${holding} itself (a file in the working directory: ./name)`,
    });
}
