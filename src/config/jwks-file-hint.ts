/**
 * The other form an end-user issuer's `jwksUri` accepts, named where a URL is refused or cannot be reached: a user
 * without an identity provider otherwise guesses a relative path. Here, not in src/authn, so that the config
 * schemas can name it without importing the authenticator.
 */
export const JWKS_FILE_HINT =
  'jwksUri also accepts file:///absolute/path.json: a key set kept on disk, with no identity provider to reach';
