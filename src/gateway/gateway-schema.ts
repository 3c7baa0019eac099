// The shape of gateway.yaml as a strict zod schema: unknown keys are rejected at every level; values are checked
// (host:port, durations, SPIFFE IDs, URLs) but not defaulted — resolveGatewayConfig fills defaults, so validating
// and defaulting stay two steps. The key names are a contract (README "Edge gateway and single sign-on").
import { z } from 'zod';
import { CLAIM_BYTES_RANGE } from '../authn/claim-size.js';
import { claimConditionsSchema } from '../authz/policy/match-claims.js';
import { parseDuration, TIMER_RANGE_MESSAGE, withinTimerRange } from '../config/duration.js';
import { parseHostPort } from '../config/host-port.js';
import { JWKS_FILE_HINT } from '../config/jwks-file-hint.js';
import { secretFilePath } from '../config/secret-path.js';
import { SpiffeId, TrustDomain } from '../identity/index.js';

const hostPort = z.string().refine((v) => parseHostPort(v) !== undefined, {
  message: 'expected host:port, e.g. 0.0.0.0:8443 (IPv6 as [::]:8443)',
});

const duration = z.string().refine(
  (v) => {
    try {
      return parseDuration(v) > 0;
    } catch {
      return false;
    }
  },
  { message: 'expected a positive duration such as 30s, 30m or 12h' },
);

/** A duration that becomes a Node timer (upstream timeout, drain): bounded so it never turns into 1 ms. */
const timerDuration = duration.refine(withinTimerRange, { message: TIMER_RANGE_MESSAGE });

const spiffeId = z.string().refine((v) => SpiffeId.tryParse(v) !== undefined, {
  message: 'expected a SPIFFE ID, e.g. spiffe://example.org/ns/shop/sa/web',
});

const trustDomain = z.string().refine(
  (v) => {
    try {
      TrustDomain.parse(v);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'expected a trust domain name such as example.org' },
);

const absoluteUrl = z.string().refine((v) => URL.canParse(v), { message: 'expected an absolute URL' });
/** Asymmetric JWS algorithms an ID token may be pinned to (`oidc.idTokenAlgorithm`): never HS* or none. */
export const ASYMMETRIC_ID_TOKEN_ALGORITHM = /^(RS|PS|ES)(256|384|512)$|^EdDSA$|^Ed25519$/;

/** The CA is only ever reached over TLS: an http URL would be retried for ever instead of refused at start. */
const caUrl = z.string().refine((v) => URL.canParse(v) && new URL(v).protocol === 'https:', {
  message: 'expected an https:// URL of meshauth ca serve, e.g. https://meshauth-ca.meshauth.svc:8443',
});
const file = z.string().min(1, { error: 'expected a file path' });
// The files of secrets: a credential pasted where its path belongs is refused naming the key, never the value (it
// would otherwise be repeated in the "cannot be read" error of every start), as the sidecar's `ca.token` is.
const tokenFile = secretFilePath('the token');
const keyFile = secretFilePath('the private key');
const sessionKeyFile = secretFilePath('the session key');
const clientSecretFile = secretFilePath('the client secret');
const claimName = z
  .string()
  .regex(/^[A-Za-z0-9_:.-]{1,64}$/, { error: 'expected a claim name of [A-Za-z0-9_:.-]' })
  .refine((v) => v !== '__proto__', { message: 'expected a claim name, not "__proto__"' });
const nonEmpty = z.string().min(1, { error: 'must not be empty' });

function list<T extends z.ZodType>(item: T) {
  return z.array(item).min(1, { error: 'must not be empty (omit the key instead)' });
}

/** Host names the gateway answers for: exact, lower case, no port (`shop.example.com`), or `*` for any host. */
const routeHost = z.string().refine((v) => v === '*' || /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(v), {
  message: 'expected a lower-case host name without port (shop.example.com), or * for any host',
});

const pathPrefix = z.string().refine((v) => v.startsWith('/') && !v.includes('?') && !/\/\.\.?(\/|$)/.test(v), {
  message: 'expected a path prefix starting with / (no query, no . or .. segments), e.g. / or /api/',
});

export const apiIssuerSchema = z.strictObject({
  issuer: nonEmpty,
  audiences: list(nonEmpty),
  algorithms: list(nonEmpty),
  // A relative path (`./jwks.json`) is the likely mistake of a user with no identity provider: name the file form.
  jwksUri: z
    .string()
    .refine((v) => URL.canParse(v), { message: `expected an absolute URL; ${JWKS_FILE_HINT}` })
    .optional(),
  caFile: file.optional(),
  typ: nonEmpty.optional(),
  /** Claims of this issuer's tokens that travel in the passport (next to sub, iss, scope, groups, client_id). */
  claims: z.array(claimName).optional(),
});

export const routeSchema = z.strictObject({
  // The name is also the Host the internal service sees and a metric label: one lower-case DNS label.
  name: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, {
    error: 'expected a lower-case DNS label (a-z, 0-9, -), e.g. web',
  }),
  match: z.strictObject({ host: routeHost, pathPrefix: pathPrefix.optional() }),
  to: z.strictObject({ address: hostPort, ids: list(spiffeId) }),
  login: z.enum(['required', 'optional', 'none']).optional(),
  scopes: list(nonEmpty).optional(),
  roles: list(nonEmpty).optional(),
  groups: list(nonEmpty).optional(),
  claims: claimConditionsSchema.optional(),
  /** Weaker: the end user's raw access token is forwarded to the service (documented in docs/gateway.md). */
  forwardToken: z.boolean().optional(),
});

export const gatewaySchema = z.strictObject({
  trustDomain,
  ca: z.strictObject({ url: caUrl, bundle: file, token: tokenFile }),
  listen: hostPort.optional(),
  tls: z.strictObject({ cert: file, key: keyFile }),
  session: z
    .strictObject({
      keys: list(sessionKeyFile),
      idleTimeout: duration.optional(),
      absoluteTimeout: duration.optional(),
      cookieName: z
        .string()
        .regex(/^__Host-[A-Za-z0-9_-]{1,40}$/, {
          error: 'expected a name starting with __Host- (e.g. __Host-meshauth)',
        })
        .optional(),
    })
    .optional(),
  oidc: z
    .strictObject({
      issuer: absoluteUrl,
      clientId: nonEmpty,
      clientSecretFile: clientSecretFile.optional(),
      redirectUri: absoluteUrl.refine((v) => new URL(v).pathname === '/.meshauth/callback', {
        message: 'expected https://<public host>/.meshauth/callback',
      }),
      scopes: list(nonEmpty).optional(),
      caFile: file.optional(),
      /** ID-token claims kept in the session and carried in the passport (sub, iss, scope, groups always). */
      claims: z.array(claimName).optional(),
      /** Dotted path of the claim holding roles (routes' `roles`), e.g. realm_access.roles. */
      rolesClaim: z
        .string()
        .regex(/^[A-Za-z0-9_:-]{1,64}(\.[A-Za-z0-9_:-]{1,64}){0,7}$/)
        .optional(),
      postLogoutRedirectUri: absoluteUrl.optional(),
      /** Renew with the refresh token this long before the access token expires. */
      refreshBefore: duration.optional(),
      idTokenAlgorithm: z
        .string()
        .regex(ASYMMETRIC_ID_TOKEN_ALGORITHM, {
          error: 'expected an asymmetric algorithm (RS256, PS256, ES256, EdDSA, …); HS* and none are refused',
        })
        .optional(),
    })
    .optional(),
  apiIssuers: z.array(apiIssuerSchema).optional(),
  /** The CA's JWT-SVIDs as API credentials (workloads outside the mesh); keys from `<ca.url>/v1/jwks`. */
  jwtSvids: z
    .strictObject({
      audiences: list(nonEmpty),
      /** The CA's issuer URL (`ca serve --issuer-url`); default ca.url. */
      issuer: absoluteUrl.optional(),
    })
    .optional(),
  routes: list(routeSchema),
  policy: file.optional(),
  admin: z.strictObject({ listen: hostPort }).optional(),
  limits: z
    .strictObject({
      callbackPerMinute: z.int().min(1).max(100_000).optional(),
      maxHeaderBytes: z.int().min(1024).max(65_536).optional(),
      maxClaimBytes: z.int().min(CLAIM_BYTES_RANGE.min).max(CLAIM_BYTES_RANGE.max).optional(),
      upstreamTimeout: timerDuration.optional(),
      maxTokenLifetime: duration.optional(),
    })
    .optional(),
  drainTimeout: timerDuration.optional(),
});

export type GatewayFile = z.infer<typeof gatewaySchema>;
