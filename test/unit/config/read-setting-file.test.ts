// The one message shape of a file an operator named (readSettingFile, and the agent's token reader that shares its
// wording): the setting first, what the file holds, the path, then why — a directory is "not a regular file", a file
// past the bound "larger than N bytes", a missing one its errno. The content (a secret) is never in the message.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTokenFile } from '../../../src/agent/credential-files.js';
import { readSettingFile } from '../../../src/config/read-setting-file.js';
import { isMeshauthError } from '../../../src/errors/index.js';

const dir = mkdtempSync(join(tmpdir(), 'meshauth-setting-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'hunter2-hunter2-hunter2';

function refusal(run: () => unknown): { message: string; reason: string | undefined } {
  try {
    run();
  } catch (error) {
    expect(isMeshauthError(error, 'MESHAUTH_ERR_FILE_UNREADABLE'), String(error)).toBe(true);
    const { message, reason } = error as { message: string; reason?: string };
    return { message, reason };
  }
  throw new Error('expected a refusal');
}

async function asyncRefusal(run: () => Promise<unknown>): Promise<{ message: string; reason: string | undefined }> {
  try {
    await run();
  } catch (error) {
    expect(isMeshauthError(error, 'MESHAUTH_ERR_FILE_UNREADABLE'), String(error)).toBe(true);
    const { message, reason } = error as { message: string; reason?: string };
    return { message, reason };
  }
  throw new Error('expected a refusal');
}

const setting = { setting: 'session.keys[0]', what: 'session key file', reason: 'session_key_unreadable' };

describe('readSettingFile', () => {
  it('fail/a file past the bound → "larger than N bytes", its content never quoted', () => {
    const file = join(dir, 'big.key');
    writeFileSync(file, SECRET.repeat(10));
    const { message, reason } = refusal(() => readSettingFile(file, { ...setting, maxBytes: 64 }));
    expect(message).toBe(`session.keys[0]: session key file ${file}: larger than 64 bytes`);
    expect(message).not.toContain(SECRET);
    expect(reason).toBe('session_key_unreadable');
  });

  it('fail/a directory → "not a regular file"', () => {
    expect(refusal(() => readSettingFile(dir, setting)).message).toBe(
      `session.keys[0]: session key file ${dir}: not a regular file`,
    );
  });

  it('fail/nothing at the path → its errno', () => {
    const file = join(dir, 'missing.key');
    expect(refusal(() => readSettingFile(file, setting)).message).toBe(
      `session.keys[0]: session key file ${file}: cannot be read (ENOENT)`,
    );
  });

  it('ok/a file within the bound → its text', () => {
    const file = join(dir, 'ok.key');
    writeFileSync(file, SECRET);
    expect(readSettingFile(file, { ...setting, maxBytes: 64 })).toBe(SECRET);
  });
});

describe('readTokenFile: the same shape, the flag first when a command line named the file', () => {
  it('fail/a token past 64 KiB → "larger than 65536 bytes", reason too_large', async () => {
    const file = join(dir, 'big.token');
    writeFileSync(file, 'x'.repeat(64 * 1024 + 1));
    const { message, reason } = await asyncRefusal(() => readTokenFile(file, '--token-file'));
    expect(message).toBe(`--token-file: token file ${file}: larger than 65536 bytes`);
    expect(reason).toBe('too_large');
  });

  it('fail/an empty token (whitespace only) → "empty", reason token_empty; without a flag, no prefix', async () => {
    const file = join(dir, 'empty.token');
    writeFileSync(file, ' \n');
    const { message, reason } = await asyncRefusal(() => readTokenFile(file));
    expect(message).toBe(`token file ${file}: empty`);
    expect(reason).toBe('token_empty');
  });
});
