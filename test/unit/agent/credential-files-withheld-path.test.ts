// The agent's file readers (`--token-file`, `ca.token`, `ca.bundle`) withhold a "path" that is a credential itself,
// from the message and from Node's error kept as its cause, as the config's setting-file reader does
// (config/secret-path.ts). Review follow-up: `meshauth cert request --token-file <the join token>` (no schema checks
// a flag) printed `--token-file: token file <the token>: cannot be read (ENOENT)`, and the cause repeated it in
// `open '<the token>'`: a token on stderr or in a log can be redeemed for the workload's identity until it expires.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readBundleFile, readTokenFile } from '../../../src/agent/index.js';
import { WITHHELD_PATH } from '../../../src/config/secret-path.js';
import { isMeshauthError, type MeshauthError } from '../../../src/errors/index.js';
import { TrustDomain } from '../../../src/identity/index.js';

const JOIN_TOKEN = 'DZWxRRCSCems4XARTR6AiHSnSCOmFqPh3vADbEuinec';
const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJl';
const PEM = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ2xv\n-----END CERTIFICATE-----\n';

const dir = mkdtempSync(join(tmpdir(), 'meshauth-withheld-path-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function refusal(read: Promise<unknown>): Promise<MeshauthError> {
  const error = await read.then(
    () => new Error('expected the read to fail'),
    (e: unknown) => e,
  );
  if (isMeshauthError(error, 'MESHAUTH_ERR_FILE_UNREADABLE')) return error;
  throw error;
}

/** Everything an error hands a log line: its message, its fields, its cause's message and stack. */
function logged(error: MeshauthError): string {
  const cause = error.cause as Error;
  return JSON.stringify({ ...error, message: error.message, stack: error.stack, cause: [cause.message, cause.stack] });
}

describe('agent files: a credential given as the path', () => {
  for (const [setting, name, value] of [
    ['--token-file', 'a join token', JOIN_TOKEN],
    ['ca.token', 'a service-account JWT', JWT],
  ] as const) {
    it(`fail/${setting} <${name}> → "${WITHHELD_PATH}", in the message and in its cause`, async () => {
      const error = await refusal(readTokenFile(value, setting));
      expect(error.message).toBe(`${setting}: token file ${WITHHELD_PATH}: cannot be read (ENOENT)`);
      expect(error.reason).toBe('token_unreadable');
      expect((error.cause as { code?: string }).code).toBe('ENOENT');
      expect(logged(error)).not.toContain(value.slice(4, 24));
    });
  }

  it(`fail/ca.bundle <a PEM certificate pasted whole> → "${WITHHELD_PATH}"`, async () => {
    const error = await refusal(readBundleFile(PEM, TrustDomain.parse('example.org'), 'ca.bundle'));
    expect(error.message).toBe(`ca.bundle: trust bundle file ${WITHHELD_PATH}: cannot be read (ENOENT)`);
    expect(logged(error)).not.toContain('MIIBszCCAVmgAwIBAgIUQ2xv');
  });

  it("ok/a path is shown, with Node's error kept as the cause", async () => {
    const absent = join(dir, 'absent-token');
    const error = await refusal(readTokenFile(absent, '--token-file'));
    expect(error.message).toBe(`--token-file: token file ${absent}: cannot be read (ENOENT)`);
    expect((error.cause as Error).message).toContain(absent);
  });
});
