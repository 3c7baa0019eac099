// A reload that meets a policy nested past 64 levels, or one saved in another encoding than UTF-8, keeps the policy
// in force, counts one failure and writes one error line naming the file, the line and what was expected, like any
// invalid file. Review findings: nesting a few thousand deep overflowed the stack in the reload (on Node 20 V8 then
// aborted the sidecar; on Node 24 the message was "YAML line 1: Maximum call stack size exceeded"), and 4 MB of it
// held the event loop for over 20 s; a Latin-1 file was decoded with U+FFFD and applied, its deny rule on
// `sous-traités` never matching anyone.
import { writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PolicyWatcher } from '../../../src/authz/policy-watcher.js';
import { Metrics } from '../../../src/telemetry/index.js';
import { type LogLines, logLines } from '../../helpers/log-lines.js';
import {
  type PolicyFile,
  reloadOnlyWatcher,
  policyReloads as reloads,
  writePolicyFile,
} from '../../helpers/policy-reloads.js';

const VALID =
  'apiVersion: meshauth.dev/v1\nkind: Policy\nrules:\n  - name: allow-one\n    action: allow\n    to: { paths: ["/one"] }\n';

describe('PolicyWatcher: a reload of text no parse should take', () => {
  let policy: PolicyFile;
  let file: string;
  let metrics: Metrics;
  let log: LogLines;
  let watcher: PolicyWatcher;

  beforeEach(async () => {
    policy = await writePolicyFile('meshauth-policy-refused-', VALID);
    file = policy.file;
    metrics = new Metrics();
    log = logLines('sidecar');
    // reload() is the change event, so each attempt is one judgement.
    watcher = reloadOnlyWatcher({ file, logger: log.logger, metrics });
    await watcher.start();
  });

  afterEach(async () => {
    watcher.close();
    await policy.remove();
  });

  for (const [name, content, message] of [
    [
      'fail/1 MiB of "[" (and again, one level deeper: the second parse is where Node 20 aborted)',
      (n: number) => `${'['.repeat(512 * 1024 - 1 + n)}${']'.repeat(512 * 1024 - 1 + n)}`,
      `invalid policy FILE:\n  FILE: YAML line 1: nested deeper than 64 levels: expected at most 64 maps and lists inside each other`,
    ],
    [
      'fail/a deny rule saved as Latin-1 (and again, with one more rule)',
      (n: number) =>
        Buffer.concat([
          Buffer.from(
            `${VALID}${'  - { name: more, action: allow }\n'.repeat(n)}  - name: deny-contractors\n    action: deny\n    when: { user: { groups: ["sous-trait`,
          ),
          Buffer.from([0xe9]),
          Buffer.from('s"] } }\n'),
        ]),
      'FILE: not valid UTF-8 (byte offset OFFSET, line LINE): save the file as UTF-8',
    ],
  ] as const) {
    it(`${name} → the policy in force stays; each version counted and logged once`, async () => {
      const before = watcher.current();
      for (const n of [0, 1]) {
        const bytes = content(n);
        await writeFile(file, bytes);
        await watcher.reload();
        await watcher.reload(); // the same content again: not judged, counted or logged again
        expect(watcher.current()).toBe(before);
        expect(await reloads(metrics, 'failure')).toBe(n + 1);
        const failed = log.find({ msg: 'policy reload failed; keeping the previous policy' });
        expect(failed).toHaveLength(n + 1);
        expect(failed[n]).toMatchObject({ level: 'error', file, code: 'MESHAUTH_ERR_POLICY_INVALID' });
        const offset = Buffer.isBuffer(bytes) ? bytes.indexOf(0xe9) : 0;
        const line = Buffer.isBuffer(bytes) ? bytes.subarray(0, offset).toString('latin1').split('\n').length : 0;
        expect(failed[n]?.error).toBe(
          message.replaceAll('FILE', file).replace('OFFSET', String(offset)).replace('LINE', String(line)),
        );
      }
      expect(await reloads(metrics, 'success')).toBe(0);
    });
  }
});
