// `meshauth inject` given more than 64 MiB: refused with exit 2 and one line naming the input and the limit, whether
// the bytes come through stdin (which was read without bound), a pipe (`-f <(…)`) or a file. The writer streams
// spaces through a pipe and stops on EPIPE; the file is sparse: nothing near 64 MiB is written to disk.
import { closeSync, mkdtempSync, openSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_MANIFEST_BYTES } from '../../src/cli/manifest-input.js';
import { assertBuilt, MAIN } from '../helpers/meshauth-cli.js';
import { runCommand } from '../helpers/sidecar-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'meshauth-e2e-inject-too-large-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(() => assertBuilt(['src/config', 'src/cli', 'src/k8s']));

/** Writes `process.argv[1]` bytes of spaces to stdout in 64 KiB chunks, honouring back-pressure; a closed pipe ends it. */
const WRITER = `
const chunk = Buffer.alloc(64 * 1024, 0x20);
let left = Math.ceil(Number(process.argv[1]) / chunk.length);
process.stdout.on('error', () => process.exit(0));
const write = () => {
  while (left > 0) {
    left--;
    if (!process.stdout.write(chunk)) return void process.stdout.once('drain', write);
  }
};
write();
`;
/** One MiB past the limit. */
const STREAMED = String(MAX_MANIFEST_BYTES + 1024 * 1024);
const LIMIT_TEXT = `larger than ${MAX_MANIFEST_BYTES} bytes (64 MiB), the most meshauth reads: split it into smaller inputs`;

/** `script` in bash with $0 = node, $1 = the CLI, $2 = the writer, $3 = its byte count; killed after 30 s. */
const bash = (script: string) =>
  runCommand('bash', ['-c', script, process.execPath, MAIN, WRITER, STREAMED], { timeoutMs: 30_000 });

describe('meshauth inject past 64 MiB of input', () => {
  it('fail/stdin through a pipe → exit 2, "stdin: manifest is larger than 67108864 bytes (64 MiB)"', async () => {
    const result = await bash(`"$0" -e "$2" "$3" | "$0" "$1" inject`);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(`meshauth: stdin: manifest is ${LIMIT_TEXT} [MESHAUTH_ERR_FILE_UNREADABLE]\n`);
    expect(result.stdout).toBe('');
  }, 60_000);

  it('fail/-f <(writer), a pipe → exit 2 naming the pipe and the limit', async () => {
    const result = await bash(`exec "$0" "$1" inject -f <("$0" -e "$2" "$3")`);
    expect(result.code, result.stderr).toBe(2);
    // The shell names the pipe /dev/fd/N.
    expect(result.stderr).toMatch(/^meshauth: \/dev\/fd\/\d+: manifest is larger than /);
    expect(result.stderr.endsWith(`: manifest is ${LIMIT_TEXT} [MESHAUTH_ERR_FILE_UNREADABLE]\n`)).toBe(true);
    expect(result.stderr.split('\n')).toHaveLength(2);
    expect(result.stdout).toBe('');
  }, 60_000);

  it('fail/uninject -f FILE of 64 MiB and a byte (sparse) → exit 2 naming the file and the limit', async () => {
    const file = join(dir, 'huge.yaml');
    closeSync(openSync(file, 'w'));
    truncateSync(file, MAX_MANIFEST_BYTES + 1);
    const result = await runCommand(process.execPath, [MAIN, 'uninject', '-f', file], { timeoutMs: 30_000 });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(`meshauth: ${file}: manifest is ${LIMIT_TEXT} [MESHAUTH_ERR_FILE_UNREADABLE]\n`);
  }, 60_000);
});
