// MeshauthError: the one error type that carries a stable code. `message` is for logs and the CLI;
// `publicMessage` is the only text a remote client may see.
import { ERRORS, type ErrorCode } from './registry.js';

export interface MeshauthErrorOptions {
  /** A bounded reason for metrics labels and tests (e.g. `token_used`); never user input. */
  readonly reason?: string;
  /** Extra structured detail for the log line. */
  readonly detail?: Readonly<Record<string, unknown>>;
  readonly cause?: unknown;
}

export class MeshauthError extends Error {
  override readonly name = 'MeshauthError';
  readonly code: ErrorCode;
  readonly reason: string | undefined;
  readonly detail: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: MeshauthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reason = options.reason;
    this.detail = options.detail;
  }

  get status(): number {
    return ERRORS[this.code].status;
  }

  get publicMessage(): string {
    return ERRORS[this.code].message;
  }

  /** The JSON body sent to HTTP clients: `{code, message}` with the fixed sentence only. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.publicMessage };
  }
}

export function isMeshauthError(value: unknown, code?: ErrorCode): value is MeshauthError {
  return value instanceof MeshauthError && (code === undefined || value.code === code);
}
