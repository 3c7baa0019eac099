// keyFileProtection: a CA key file that users other than the CA may read or write, and the fix to print. The CA's
// own files must be 0600 or less; a file of another owner (a Secret the kubelet mounts, root's, with the pod's
// fsGroup) may be read by its group too, which is how the shipped 0440 mount reaches the CA.
import { describe, expect, it } from 'vitest';
import { keyFileProtection } from '../../../src/ca/unprotected-key-files.js';

const FILE = '/etc/meshauth/ca/intermediate.key';
const CA_UID = 65532;
const OWN_FIX = `chmod 600 ${FILE}`;
const MOUNT_FIX = expect.stringMatching(
  /^let only its owner and the CA's group read it \(chmod 640 .*defaultMode: 0440 with the pod fsGroup/,
);

describe('keyFileProtection', () => {
  it.each<[string, number, number, string | undefined, unknown]>([
    ['ok/own 0600', 0o100600, CA_UID, undefined, undefined],
    ['ok/own 0400', 0o100400, CA_UID, undefined, undefined],
    ['ok/own 0700 (an execute bit exposes nothing)', 0o100700, CA_UID, undefined, undefined],
    ['fail/own 0644', 0o100644, CA_UID, '0644', OWN_FIX],
    ['fail/own 0640 (its group reads it)', 0o100640, CA_UID, '0640', OWN_FIX],
    ['fail/own 0604 (everyone reads it)', 0o100604, CA_UID, '0604', OWN_FIX],
    ['fail/own 0620 (its group may replace it)', 0o100620, CA_UID, '0620', OWN_FIX],
    ['ok/root-owned 0440 (the shipped Secret mount, fsGroup)', 0o100440, 0, undefined, undefined],
    ['ok/root-owned 0640', 0o100640, 0, undefined, undefined],
    ['fail/root-owned 0644 (a Secret without defaultMode)', 0o100644, 0, '0644', MOUNT_FIX],
    ['fail/root-owned 0444 (defaultMode 0444)', 0o100444, 0, '0444', MOUNT_FIX],
    ['fail/root-owned 0660 (its group may replace it)', 0o100660, 0, '0660', MOUNT_FIX],
    ['fail/setgid bit kept in the mode shown', 0o102644, CA_UID, '02644', OWN_FIX],
  ])('%s', (_name, mode, uid, shown, fix) => {
    const found = keyFileProtection(FILE, { mode, uid }, CA_UID);
    if (shown === undefined) {
      expect(found).toBeUndefined();
    } else {
      expect(found).toEqual({ file: FILE, mode: shown, fix });
    }
  });
});
