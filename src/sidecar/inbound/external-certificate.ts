// The external listener's server certificate (`inbound.external.cert`/`key`): PEM files read once, at
// start (no reload on SIGHUP; restart the sidecar to change them), checked so a wrong file fails the start with a
// message naming the key instead of failing every handshake later. Not the SVID: clients verify it by host name.
import { createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { type ExternalListenerSettings, readSettingFile } from '../../config/index.js';
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
  const cert = readPem(settings.cert, certKey, 'certificate file');
  const key = readPem(settings.key, keyKey, 'key file');
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

/** Bounded and regular files only: a FIFO at the path blocked the start, a directory printed a bare EISDIR. */
function readPem(file: string, key: string, what: string): string {
  return readSettingFile(file, { setting: key, what, maxBytes: MAX_PEM_BYTES, reason: 'external_tls_unreadable' });
}

function invalid(message: string, cause?: unknown): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_CONFIG_INVALID', message, {
    reason: 'external_tls_invalid',
    ...(cause === undefined ? {} : { cause }),
  });
}
