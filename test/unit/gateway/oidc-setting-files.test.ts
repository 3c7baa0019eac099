// The OIDC relying party's setting files (`oidc.clientSecretFile`, `oidc.caFile`) withhold a path that looks like a
// credential in every refusal, as config/read-setting-file.ts does. Review follow-up: the empty-secret refusal
// (`oidc.clientSecretFile: cannot use <path> (empty)`) printed the path as given, the one message of the reader
// that did not go through the withholding.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WITHHELD_PATH } from '../../../src/config/secret-path.js';
import { isMeshauthError } from '../../../src/errors/index.js';
import type { OidcSettings } from '../../../src/gateway/gateway-config.js';
import { OidcRelyingParty } from '../../../src/gateway/oidc-relying-party.js';
import { logLines } from '../../helpers/log-lines.js';
import { oidcSettings } from '../../helpers/oidc-settings.js';

const dir = mkdtempSync(join(tmpdir(), 'meshauth-oidc-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function settings(clientSecretFile: string): OidcSettings {
  return oidcSettings({
    issuer: 'https://login.example.com',
    clientSecretFile,
    redirectUri: 'https://shop.example.com/.meshauth/callback',
  });
}

function refusal(clientSecretFile: string): string {
  try {
    new OidcRelyingParty(settings(clientSecretFile), logLines('gateway', 'info').logger);
  } catch (error) {
    if (isMeshauthError(error, 'MESHAUTH_ERR_FILE_UNREADABLE')) return error.message;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('oidc setting files', () => {
  it(`fail/an empty client secret file whose name is a PEM header → "${WITHHELD_PATH}"`, () => {
    // The name reads as a pasted key (secret-path.ts): only a real file gets as far as "empty".
    const path = join(dir, '-----BEGIN PRIVATE KEY-----');
    writeFileSync(path, '\n');
    expect(refusal(path)).toBe(`oidc.clientSecretFile: cannot use ${WITHHELD_PATH} (empty)`);
  });

  it(`fail/a client secret given as the path → "${WITHHELD_PATH}"`, () => {
    expect(refusal('q8Xv2m3NrT5kLw9ZpB4yHc7JdF6sGa1E')).toBe(
      `oidc.clientSecretFile: client secret file ${WITHHELD_PATH}: cannot be read (ENOENT)`,
    );
  });

  it('ok/an empty file at a path is named', () => {
    const path = join(dir, 'client.secret');
    writeFileSync(path, '');
    expect(refusal(path)).toBe(`oidc.clientSecretFile: cannot use ${path} (empty)`);
  });
});
