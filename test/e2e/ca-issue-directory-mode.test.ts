// `meshauth ca issue --out DIR/name` creates DIR for the key it writes: under umask 000 (set in some container
// images) it must not be writable by others, or any local user could delete or swap the key and its chain.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliCaDirPerTest } from '../helpers/ca-dir.js';
import { meshauth } from '../helpers/meshauth-cli.js';

const ca = cliCaDirPerTest('meshauth-e2e-issue-dir-');

describe('ca issue --out in a directory it creates', () => {
  it('ok/under umask 000, the directories it creates are 0755, the key 0600', async () => {
    // The child takes the umask it is spawned with; the test process gets its own back at once.
    const previous = process.umask(0);
    let pending: ReturnType<typeof meshauth>;
    try {
      pending = meshauth(
        ['ca', 'issue', '--dir', ca.dir, '--id', 'spiffe://example.org/ns/a/sa/web', '--out', 'certs/web/svid'],
        { cwd: ca.cwd },
      );
    } finally {
      process.umask(previous);
    }
    const result = await pending;
    expect(result.code, result.stderr).toBe(0);
    expect(statSync(join(ca.cwd, 'certs')).mode & 0o777).toBe(0o755);
    expect(statSync(join(ca.cwd, 'certs', 'web')).mode & 0o777).toBe(0o755);
    expect(statSync(join(ca.cwd, 'certs', 'web', 'svid.key')).mode & 0o777).toBe(0o600);
  });
});
