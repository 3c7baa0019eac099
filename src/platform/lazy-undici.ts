// undici, loaded the first time a sidecar needs it: a JWKS or OIDC discovery fetch (both HTTP/1.1 hops, to the app
// and to a peer, use the sidecar's own client, http1-client.ts). A sidecar without end-user issuers never loads it,
// which keeps 9–15 MiB out of its idle and peak RSS (docs/performance.md, Round 19). Processes that always use it
// (the gateway, the CA, the demo) import it directly.
type Undici = typeof import('undici');

let loaded: Undici | undefined;
let loading: Promise<Undici> | undefined;

/** undici, once its import has finished; undefined before. */
export function undiciIfLoaded(): Undici | undefined {
  return loaded;
}

/** undici, imported on the first call. */
export function loadUndici(): Promise<Undici> {
  loading ??= import('undici').then((module) => {
    loaded = module;
    return module;
  });
  return loading;
}
