// The per-identity limit of one CA endpoint: its own token buckets (identity-rate-limit.ts) and its own
// rate-limited warn line. Called after the caller is authenticated (the identity is the credential's) and before
// anything is signed. A refusal sets Retry-After and throws 429 MESHAUTH_ERR_CA_RATE_LIMITED; api.ts counts it and,
// for this reason alone, writes no line per request (one identity in a loop is refused a thousand times a second).
import type { ServerResponse } from 'node:http';
import { MeshauthError } from '../errors/index.js';
import type { SpiffeId } from '../identity/index.js';
import { type Logger, type Metrics, RateLimitedLog } from '../telemetry/index.js';
import { type Admission, IdentityRateLimit } from './identity-rate-limit.js';

/** `meshauth_ca_requests_rejected_total{reason}` of every per-identity refusal, whichever endpoint. */
export const IDENTITY_RATE_LIMITED = 'identity_rate_limited';
const LOG_INTERVAL_MS = 10_000;

export interface IdentityLimitOptions {
  /** What the endpoint issues, as the log line and the error message name it. */
  readonly what: 'SVID' | 'JWT-SVID';
  /** The warn line's `event`; one per endpoint, so a flood on one does not hide the other's first line. */
  readonly event: string;
  readonly buckets?: IdentityRateLimit;
  /** Carried on the refusal (the token endpoint's OAuth `error`). */
  readonly refusalDetail?: Readonly<Record<string, unknown>>;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export class IdentityLimit {
  readonly #what: IdentityLimitOptions['what'];
  readonly #buckets: IdentityRateLimit;
  readonly #log: RateLimitedLog;
  readonly #refusalDetail: Readonly<Record<string, unknown>> | undefined;

  constructor(options: IdentityLimitOptions) {
    this.#what = options.what;
    this.#buckets = options.buckets ?? new IdentityRateLimit();
    this.#log = new RateLimitedLog(options.logger, options.metrics, options.event, LOG_INTERVAL_MS);
    this.#refusalDetail = options.refusalDetail;
  }

  /** Takes one request from `id`'s bucket at `now` (the CA's clock), or refuses it with 429 and Retry-After. */
  admit(id: SpiffeId, now: Date, res: ServerResponse, fields: Readonly<Record<string, unknown>>): void {
    this.#refuseUnless(this.#buckets.take(id.toString(), now.getTime()), id, res, fields);
  }

  /** Refuses as `admit` does when `id`'s bucket is empty at `now`, but takes nothing from it. */
  check(id: SpiffeId, now: Date, res: ServerResponse, fields: Readonly<Record<string, unknown>>): void {
    this.#refuseUnless(this.#buckets.peek(id.toString(), now.getTime()), id, res, fields);
  }

  #refuseUnless(
    admission: Admission,
    id: SpiffeId,
    res: ServerResponse,
    fields: Readonly<Record<string, unknown>>,
  ): void {
    if (admission.allowed) return;
    res.setHeader('retry-after', String(admission.retryAfterSeconds));
    this.#log.warn(
      {
        code: 'MESHAUTH_ERR_CA_RATE_LIMITED',
        id: id.toString(),
        ...fields,
        retryAfterSeconds: admission.retryAfterSeconds,
      },
      `one identity is asking for ${this.#what}s faster than any workload needs: refusing with 429 and Retry-After`,
    );
    throw new MeshauthError('MESHAUTH_ERR_CA_RATE_LIMITED', `too many ${this.#what} requests for ${id}`, {
      reason: IDENTITY_RATE_LIMITED,
      ...(this.#refusalDetail === undefined ? {} : { detail: this.#refusalDetail }),
    });
  }
}
