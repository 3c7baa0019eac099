// readPolicyText: the policy file decoded strictly and bounded at 1 MiB. Review findings: it used Buffer#toString,
// so a policy saved as Latin-1 validated with `sous-trait\uFFFDs` in a deny rule that then never matched (`policy
// test` showed it letting the user in); and the bound was 8 MiB, of which 4 MB nested held one parse for over 20 s
// (nesting is now bounded on its own; 1 MiB still holds 3,000 ten-line rules).
import { describe, expect, it } from 'vitest';
import { MAX_POLICY_BYTES, readPolicyText } from '../../../src/authz/load-policy-file.js';
import { refusal } from '../../helpers/refusal.js';
import { bytes, scratchFiles } from '../../helpers/text-files.js';

const write = scratchFiles('meshauth-policy-text-');

const LATIN1 = bytes(
  'apiVersion: meshauth.dev/v1\nkind: Policy\nrules:\n  - name: d\n    action: deny\n    when: { user: { groups: ["sous-trait',
  [0xe9],
  's"] } }\n',
);

describe('readPolicyText', () => {
  it('fail/a Latin-1 policy → MESHAUTH_ERR_POLICY_INVALID, reason not_utf8, offset and line', async () => {
    const file = write('latin1-policy.yaml', LATIN1);
    const error = await refusal(() => readPolicyText(file));
    expect(error.code).toBe('MESHAUTH_ERR_POLICY_INVALID');
    expect(error.reason).toBe('not_utf8');
    expect(error.message).toBe(`${file}: not valid UTF-8 (byte offset 117, line 6): save the file as UTF-8`);
  });

  it('fail/past 1 MiB → "larger than 1048576 bytes" (a real policy is a few hundred KiB)', async () => {
    expect(MAX_POLICY_BYTES).toBe(1024 * 1024);
    const file = write('big-policy.yaml', `# ${'x'.repeat(MAX_POLICY_BYTES)}\n`);
    const error = await refusal(() => readPolicyText(file));
    expect(error.code).toBe('MESHAUTH_ERR_POLICY_INVALID');
    expect(error.message).toBe(`${file}: larger than 1048576 bytes`);
  });

  it('ok/a UTF-8 policy is read as it is, but for a leading byte-order mark', async () => {
    const file = write('ok.yaml', bytes([0xef, 0xbb, 0xbf], 'groups: [sous-traités]\n'));
    expect(await readPolicyText(file)).toBe('groups: [sous-traités]\n');
  });
});
