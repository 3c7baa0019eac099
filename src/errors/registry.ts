// The one registry of meshauth error codes. Each code has the HTTP status it maps to and a fixed
// sentence that may reach a client; details (why exactly, which input) go to the log and the metric only.
// A test keeps docs/errors.md in sync with this table: add a row there when you add a code here.

export interface ErrorSpec {
  /** HTTP status when the error ends a request; 0 for errors that never travel over HTTP (CLI, config). */
  readonly status: number;
  /** The only text a remote client ever sees for this code. */
  readonly message: string;
}

export const ERRORS = {
  // --- usage and configuration (CLI exit code 2) ---
  MESHAUTH_ERR_USAGE: { status: 0, message: 'invalid command-line usage' },
  MESHAUTH_ERR_CONFIG_INVALID: { status: 0, message: 'invalid configuration' },
  MESHAUTH_ERR_FILE_UNREADABLE: { status: 0, message: 'file cannot be read' },
  MESHAUTH_ERR_FILE_UNWRITABLE: { status: 0, message: 'file cannot be written' },
  MESHAUTH_ERR_KEY_MISMATCH: { status: 0, message: 'private key does not belong to the certificate' },
  MESHAUTH_ERR_LISTEN: { status: 0, message: 'cannot listen on the configured address' },

  // --- identity (SPIFFE ID syntax) ---
  MESHAUTH_ERR_SPIFFE_ID_INVALID: { status: 400, message: 'invalid SPIFFE ID' },
  MESHAUTH_ERR_TRUST_DOMAIN_INVALID: { status: 400, message: 'invalid trust domain' },

  // --- X509-SVID validation ---
  MESHAUTH_ERR_SVID_EXPIRED: { status: 401, message: 'certificate expired' },
  MESHAUTH_ERR_SVID_NOT_YET_VALID: { status: 401, message: 'certificate not yet valid' },
  MESHAUTH_ERR_SVID_UNKNOWN_CA: { status: 401, message: 'certificate not issued by a trusted authority' },
  MESHAUTH_ERR_SVID_TRUST_DOMAIN: { status: 401, message: 'certificate belongs to another trust domain' },
  MESHAUTH_ERR_SVID_NO_URI_SAN: { status: 401, message: 'certificate has no SPIFFE ID' },
  MESHAUTH_ERR_SVID_MULTIPLE_URI_SAN: { status: 401, message: 'certificate has more than one URI SAN' },
  MESHAUTH_ERR_SVID_LEAF_IS_CA: { status: 401, message: 'leaf certificate is a CA' },
  MESHAUTH_ERR_SVID_KEY_USAGE: { status: 401, message: 'certificate key usage not allowed for an SVID' },
  MESHAUTH_ERR_SVID_EXT_KEY_USAGE: { status: 401, message: 'certificate extended key usage not allowed for an SVID' },
  MESHAUTH_ERR_SVID_MALFORMED: { status: 400, message: 'certificate cannot be parsed' },
  MESHAUTH_ERR_SVID_CHAIN: { status: 401, message: 'certificate chain is invalid' },

  // --- PKI operations ---
  MESHAUTH_ERR_CSR_INVALID: { status: 400, message: 'certificate signing request is invalid' },
  MESHAUTH_ERR_KEY_TYPE: { status: 400, message: 'unsupported key type' },
  MESHAUTH_ERR_TTL_OUT_OF_RANGE: { status: 400, message: 'requested lifetime is out of range' },

  // --- the CA ---
  MESHAUTH_ERR_CA_EXISTS: { status: 0, message: 'a CA already exists in this directory' },
  MESHAUTH_ERR_CA_NOT_INITIALIZED: { status: 0, message: 'no CA in this directory' },
  MESHAUTH_ERR_CA_UNAUTHENTICATED: { status: 401, message: 'credential rejected' },
  MESHAUTH_ERR_CA_BAD_REQUEST: { status: 400, message: 'malformed request' },
  MESHAUTH_ERR_CA_BODY_TOO_LARGE: { status: 413, message: 'request body too large' },
  MESHAUTH_ERR_CA_UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'content type must be application/json' },
  MESHAUTH_ERR_CA_NOT_FOUND: { status: 404, message: 'not found' },
  MESHAUTH_ERR_CA_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
  MESHAUTH_ERR_CA_UNAVAILABLE: { status: 503, message: 'certificate authority unavailable' },
  MESHAUTH_ERR_CA_RESPONSE_INVALID: { status: 502, message: 'certificate authority returned an invalid response' },
  MESHAUTH_ERR_CA_SA_TOKEN_AUDIENCE: { status: 401, message: 'service-account token is for another audience' },
  MESHAUTH_ERR_CA_SA_TOKEN_EXPIRED: { status: 401, message: 'service-account token expired' },
  MESHAUTH_ERR_CA_SA_TOKEN_ISSUER: { status: 401, message: 'service-account token is from another issuer' },
  MESHAUTH_ERR_CA_SA_TOKEN_REVIEW_DENIED: { status: 401, message: 'service-account token rejected by the cluster' },
  MESHAUTH_ERR_CA_IDENTITY_MISMATCH: { status: 403, message: 'requested identity does not match the credential' },
  MESHAUTH_ERR_CA_JOIN_TOKENS_DISABLED: { status: 401, message: 'join tokens are not accepted by this CA' },
  MESHAUTH_ERR_CA_RENEWAL_TOKEN_REQUIRED: {
    status: 401,
    message: 'this CA renews an SVID only with a service-account token',
  },
  MESHAUTH_ERR_CA_OVERLOADED: { status: 429, message: 'certificate authority overloaded, retry later' },
  MESHAUTH_ERR_CA_RATE_LIMITED: { status: 429, message: 'too many SVID requests for this identity, retry later' },

  // --- sidecar data plane ---
  MESHAUTH_ERR_NOT_READY: { status: 503, message: 'sidecar has no valid identity yet' },
  MESHAUTH_ERR_UPSTREAM_UNAVAILABLE: { status: 503, message: 'upstream unavailable' },
  MESHAUTH_ERR_UPSTREAM_BUSY: { status: 503, message: 'upstream busy, retry later' },
  MESHAUTH_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'upstream timed out' },
  MESHAUTH_ERR_UPSTREAM_PROTOCOL: { status: 502, message: 'upstream sent an invalid response' },
  MESHAUTH_ERR_ROUTE_NOT_FOUND: { status: 502, message: 'no route for this host' },
  MESHAUTH_ERR_PEER_IDENTITY: { status: 502, message: 'peer identity does not match the route' },
  MESHAUTH_ERR_PEER_UNAVAILABLE: { status: 503, message: 'peer sidecar unavailable' },
  MESHAUTH_ERR_EGRESS_FORBIDDEN: { status: 403, message: 'egress to this host is not allowed' },
  MESHAUTH_ERR_BAD_REQUEST: { status: 400, message: 'malformed request' },
  MESHAUTH_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request header fields too large' },
  MESHAUTH_ERR_REQUEST_TIMEOUT: { status: 408, message: 'request timed out' },
  MESHAUTH_ERR_EXPECTATION_FAILED: { status: 417, message: 'expectation not supported' },
  MESHAUTH_ERR_HTTP_VERSION: { status: 426, message: 'HTTP/1.1 or HTTP/2 required' },

  // --- admin listeners (probes, /metrics, the webhook) ---
  MESHAUTH_ERR_ADMIN_NOT_FOUND: { status: 404, message: 'not found' },
  MESHAUTH_ERR_ADMIN_METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },

  // --- authorization ---
  MESHAUTH_ERR_FORBIDDEN: { status: 403, message: 'forbidden by policy' },
  MESHAUTH_ERR_PATH_AMBIGUOUS: { status: 400, message: 'ambiguous request path' },
  MESHAUTH_ERR_METHOD_INVALID: { status: 400, message: 'invalid request method' },
  MESHAUTH_ERR_POLICY_INVALID: { status: 0, message: 'invalid policy' },

  // --- end-user authentication and the passport ---
  MESHAUTH_ERR_TOKEN_MISSING: { status: 401, message: 'end-user token required' },
  MESHAUTH_ERR_TOKEN_INVALID: { status: 401, message: 'invalid end-user token' },
  MESHAUTH_ERR_TOKEN_REQUEST_MALFORMED: { status: 400, message: 'malformed authorization header' },
  MESHAUTH_ERR_PASSPORT_INVALID: { status: 401, message: 'invalid passport' },
  MESHAUTH_ERR_PASSPORT_TOO_DEEP: { status: 431, message: 'passport call chain too long' },

  // --- Kubernetes injection ---
  MESHAUTH_ERR_MANIFEST_INVALID: { status: 0, message: 'invalid Kubernetes manifest' },
  MESHAUTH_ERR_MANIFEST_ANNOTATION_MISPLACED: {
    status: 0,
    message: 'meshauth setting where injection does not read it',
  },
  MESHAUTH_ERR_MANIFEST_ANNOTATION_UNKNOWN: { status: 0, message: 'unknown meshauth setting annotation' },
  MESHAUTH_ERR_WEBHOOK_OVERLOADED: { status: 503, message: 'webhook busy, retry later' },

  // --- the edge gateway (browser sign-in, API clients, edge policy) ---
  MESHAUTH_ERR_LOGIN_REQUIRED: { status: 401, message: 'sign-in required' },
  MESHAUTH_ERR_LOGIN_FAILED: { status: 401, message: 'sign-in failed' },
  MESHAUTH_ERR_IDP_UNAVAILABLE: { status: 502, message: 'identity provider unavailable' },
  MESHAUTH_ERR_SESSION_TOO_LARGE: { status: 500, message: 'session does not fit in cookies' },
  MESHAUTH_ERR_CROSS_SITE_REQUEST: { status: 403, message: 'cross-site request refused' },
  MESHAUTH_ERR_RATE_LIMITED: { status: 429, message: 'too many requests' },
  MESHAUTH_ERR_EDGE_NO_ROUTE: { status: 404, message: 'not found' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERRORS, value);
}
