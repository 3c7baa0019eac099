// The external listener's server certificate (`inbound.external.cert`/`key`): PEM files read once, at
// start (no reload on SIGHUP; restart the sidecar to change them), checked so a wrong file fails the start with a
// message naming the key instead of failing every handshake later. Not the SVID: clients verify it by host name.
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ExternalListenerSettings } from '../../config/index.js';
import { MeshauthError } from '../../errors/index.js';

export interface ExternalCertificate {
  /** PEM chain (leaf first) and key, as TLS secure-context options take them. */
  readonly cert: string;
  readonly key: string;
  /** The leaf's validity end (logged at start; an expired leaf is refused). */
  readonly notAfter: Date;
  readonly subject: string;
}

const MAX_PEM_BYTES = 1024 * 1024;

/**
 * Throws MESHAUTH_ERR_FILE_UNREADABLE or MESHAUTH_ERR_CONFIG_INVALID (CLI exit 2) naming the config key as `name`
 * gives it (with the config file: `sidecar.yaml: inbound.external.cert`).
 */
export function loadExternalCertificate(
  settings: ExternalListenerSettings,
  now: Date,
  name: (key: string) => string = (key) => key,
): ExternalCertificate {
  const certKey = name('inbound.external.cert');
  const keyKey = name('inbound.external.key');
  const cert = readPem(settings.cert, certKey);
  const key = readPem(settings.key, keyKey);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert); // the first certificate of the PEM chain
  } catch (cause) {
    throw invalid(`${certKey}: ${settings.cert} holds no PEM certificate`, cause);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (cause) {
    throw invalid(`${keyKey}: ${settings.key} holds no (unencrypted) PEM private key`, cause);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw invalid(`${keyKey}: ${settings.key} is not the key of the certificate in ${settings.cert}`);
  }
  const notAfter = new Date(leaf.validTo);
  if (!(notAfter.getTime() > now.getTime())) {
    throw invalid(`${certKey}: ${settings.cert} expired at ${notAfter.toISOString()}`);
  }
  return { cert, key, notAfter, subject: leaf.subject };
}

function readPem(file: string, key: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    const errno = typeof cause === 'object' && cause !== null && 'code' in cause ? String(cause.code) : 'error';
    throw new MeshauthError('MESHAUTH_ERR_FILE_UNREADABLE', `${key}: cannot read ${file} (${errno})`, {
      reason: 'external_tls_unreadable',
      cause,
    });
  }
  if (text.length > MAX_PEM_BYTES) throw invalid(`${key}: ${file} is larger than ${MAX_PEM_BYTES} bytes`);
  return text;
}

function invalid(message: string, cause?: unknown): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', message, {
    reason: 'external_tls_invalid',
    ...(cause === undefined ? {} : { cause }),
  });
}
