// Exit-code policy of the CLI: 0 success; 2 bad input (usage, config, invalid IDs, TTLs, policies: anything the
// user can fix by changing what they typed); 1 for runtime failures. Expected errors print one line, no stack.
import { CommanderError } from 'commander';
import { MeshauthError } from '../errors/index.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

// System calls whose failure means a path could not be created or written (not `open`: it reads as well).
const WRITE_SYSCALLS: ReadonlySet<string> = new Set(['mkdir', 'write', 'rename', 'chmod', 'unlink', 'rmdir', 'link']);

// Errnos that are about the path given: fixed by choosing another path or its permissions (a read-only mount is
// such a path), so exit 2 like any bad input. Any other errno on a write (ENOSPC, EDQUOT, EIO, EMFILE, …) is the
// machine failing at run time: exit 1, with the same code.
const PATH_ERRNOS: ReadonlySet<string> = new Set([
  'EEXIST',
  'ENOTDIR',
  'EISDIR',
  'ENOENT',
  'EACCES',
  'EPERM',
  'EROFS',
  'ENAMETOOLONG',
  'ELOOP',
]);

/**
 * A file-system error no command wrapped (e.g. `ca init --dir` under a regular file: "EEXIST: file already
 * exists, mkdir …"), as MESHAUTH_ERR_FILE_UNWRITABLE naming the path: one line with a stable code instead of
 * Node's raw errno text; exitCodeFor decides 2 or 1 by the errno. Only errors carrying a path and a write-side
 * syscall are converted.
 */
export function fromFileSystemError(error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof MeshauthError) return error;
  const { syscall, path, code } = error as NodeJS.ErrnoException;
  if (typeof syscall !== 'string' || typeof path !== 'string' || !WRITE_SYSCALLS.has(syscall)) return error;
  return new MeshauthError('MESHAUTH_ERR_FILE_UNWRITABLE', `cannot write ${path}: ${code ?? 'error'} (${syscall})`, {
    reason: 'file_unwritable',
    cause: error,
  });
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof CommanderError) {
    return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  if (error instanceof MeshauthError) {
    return error.status >= 500 || isRuntimeWriteFailure(error) ? EXIT_FAILURE : EXIT_USAGE;
  }
  return EXIT_FAILURE;
}

/** MESHAUTH_ERR_FILE_UNWRITABLE caused by an errno the user cannot fix by changing the path (a full disk). */
function isRuntimeWriteFailure(error: MeshauthError): boolean {
  if (error.code !== 'MESHAUTH_ERR_FILE_UNWRITABLE') return false;
  const errno = (error.cause as NodeJS.ErrnoException | undefined)?.code;
  return typeof errno === 'string' && !PATH_ERRNOS.has(errno);
}

export function formatError(error: unknown): string {
  if (error instanceof MeshauthError) {
    return `meshauth: ${error.message} [${error.code}]`;
  }
  if (error instanceof Error) {
    return process.env.MESHAUTH_DEBUG ? `meshauth: ${error.stack ?? error.message}` : `meshauth: ${error.message}`;
  }
  return `meshauth: ${String(error)}`;
}

/**
 * commander's own refusals (a missing required flag, an unknown option or command, a missing argument) in the
 * form of every other CLI error: `meshauth: … [MESHAUTH_ERR_USAGE]` on the first line, so scripts and users find
 * the same stable code whether commander or a command's own check refused the input.
 */
export function usageErrorText(text: string): string {
  const [first = '', ...rest] = text
    .replace(/^error: /, '')
    .trimEnd()
    .split('\n');
  return `${[`meshauth: ${first} [MESHAUTH_ERR_USAGE]`, ...rest].join('\n')}\n`;
}

export function exitWithError(raw: unknown): never {
  const error = fromFileSystemError(raw);
  const code = exitCodeFor(error);
  // commander already printed its own usage message (and --help/--version output exits 0).
  if (!(error instanceof CommanderError)) {
    process.stderr.write(`${formatError(error)}\n`);
  }
  process.exit(code);
}

/**
 * `meshauth cert inspect … | head -1`: once the reader has gone, stdout writes fail with EPIPE, which Node raises as
 * an unhandled 'error' event (a stack trace on stderr). A closed pipe means nobody wants the rest: exit quietly with
 * success, like other Unix tools. Any other stdout error is still reported.
 */
export function exitQuietlyOnBrokenPipe(stream: NodeJS.WriteStream = process.stdout): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(EXIT_OK);
    exitWithError(error);
  });
}
