// Config, policy and operator files are decoded strictly: the first byte that is not UTF-8 is refused with its byte
// offset and line, by each reader in its own error (config: MESHAUTH_ERR_CONFIG_INVALID, policy:
// MESHAUTH_ERR_POLICY_INVALID, a setting's file: MESHAUTH_ERR_FILE_UNREADABLE). Review finding: every reader used
// Buffer#toString, so a policy saved as Latin-1 validated with `sous-trait\uFFFDs` in a deny rule that then never
// matched, and a binary secret lost its bytes to U+FFFD without a word. A leading byte-order mark is dropped (review
// finding: it stayed in the text, so a password file saved by a Windows editor gave U+FEFF to the PKCS#12 password).
import { describe, expect, it } from 'vitest';
import { readConfigText } from '../../../src/config/index.js';
import { readSettingFile } from '../../../src/config/read-setting-file.js';
import { decodeUtf8 } from '../../../src/config/utf8-text.js';
import { refusal } from '../../helpers/refusal.js';
import { bytes, scratchFiles } from '../../helpers/text-files.js';

const write = scratchFiles('meshauth-utf8-');

describe('decodeUtf8', () => {
  for (const [name, input, text] of [
    ['ok/ASCII', bytes('a: 1\n'), 'a: 1\n'],
    ['ok/accents, CJK and an emoji', bytes('g: [sous-traités, 東京, 🙂]'), 'g: [sous-traités, 東京, 🙂]'],
    ['ok/a leading byte-order mark is dropped', bytes([0xef, 0xbb, 0xbf], 'a: 1'), 'a: 1'],
    ['ok/only the first of two byte-order marks is', bytes([0xef, 0xbb, 0xbf, 0xef, 0xbb, 0xbf], 'a'), '\ufeffa'],
    ['ok/a U+FEFF after the start is text', bytes('a\ufeff'), 'a\ufeff'],
    ['ok/a byte-order mark alone is an empty text', bytes([0xef, 0xbb, 0xbf]), ''],
    ['ok/a U+FFFD the file holds itself', bytes('a: "\ufffd"'), 'a: "\ufffd"'],
  ] as const) {
    it(name, () => {
      expect(decodeUtf8(input)).toEqual({ ok: true, text });
    });
  }

  for (const [name, input, offset, line] of [
    ['fail/a Latin-1 é', bytes('a: 1\ng: [sous-trait', [0xe9], 's]\n'), 19, 2],
    ['fail/after a U+FFFD the file holds itself', bytes('\ufffd\n\ufffd', [0xff]), 7, 2],
    ['fail/a sequence cut short at the end', bytes('abc', [0xe6, 0x9d]), 3, 1],
    ['fail/an overlong "/" (C0 AF)', bytes('a\n\nb', [0xc0, 0xaf]), 4, 3],
    ['fail/a UTF-16 surrogate (ED A0 80)', bytes('x', [0xed, 0xa0, 0x80]), 1, 1],
    ['fail/after a byte-order mark: the offset counts it', bytes([0xef, 0xbb, 0xbf], 'a', [0xff]), 4, 1],
  ] as const) {
    it(`${name} → byte offset ${offset}, line ${line}`, () => {
      expect(decodeUtf8(input)).toEqual({ ok: false, offset, line });
    });
  }
});

describe('the readers', () => {
  it('fail/readConfigText: a Latin-1 config → MESHAUTH_ERR_CONFIG_INVALID, reason config_not_utf8', async () => {
    const file = write('latin1-config.yaml', bytes('trustDomain: example.org\n# r', [0xe9], 'seau\n'));
    const error = await refusal(() => readConfigText(file));
    expect(error.code).toBe('MESHAUTH_ERR_CONFIG_INVALID');
    expect(error.reason).toBe('config_not_utf8');
    expect(error.message).toBe(`${file}: not valid UTF-8 (byte offset 28, line 2): save the file as UTF-8`);
  });

  it('fail/readSettingFile: a binary secret → MESHAUTH_ERR_FILE_UNREADABLE naming the setting, never the bytes', async () => {
    const file = write('binary.key', bytes([0x41, 0x42, 0x9f, 0x43]));
    const error = await refusal(() =>
      readSettingFile(file, { setting: 'session.keys[0]', what: 'session key file', reason: 'session_key' }),
    );
    expect(error.code).toBe('MESHAUTH_ERR_FILE_UNREADABLE');
    expect(error.reason).toBe('session_key');
    expect(error.message).toBe(
      `session.keys[0]: session key file ${file}: not valid UTF-8 (byte offset 2, line 1): save the file as UTF-8`,
    );
  });

  it('ok/each reader returns the text of a UTF-8 file, without its byte-order mark', async () => {
    const file = write('ok.yaml', bytes([0xef, 0xbb, 0xbf], 'groups: [sous-traités]\n'));
    const setting = { setting: 'k', what: 'file', reason: 'r' };
    for (const text of [readConfigText(file), readSettingFile(file, setting)]) {
      expect(text).toBe('groups: [sous-traités]\n');
    }
  });

  it('ok/readSettingFile: a password file saved with a byte-order mark reads as the password alone', async () => {
    // `--p12-password-file` takes the text as it is, but for a final newline: no trim() to drop a U+FEFF.
    const file = write('p12-password', bytes([0xef, 0xbb, 0xbf], 'pässwörd\r\n'));
    const text = readSettingFile(file, { setting: '--p12-password-file', what: 'password file', reason: 'r' });
    expect(text).toBe('pässwörd\r\n');
  });
});
