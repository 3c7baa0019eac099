// The demo's script: one end-user call through web → orders → payments, one call the policy denies, then what to
// try by hand. Policy decisions are read from each sidecar's own `meshauth_authz_decisions_total`, so what is
// printed is what the sidecars decided, not a re-computation.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import type { DemoResponse, HopView } from './demo-apps.js';
import { signInHeadless } from './demo-browser.js';
import { GATEWAY_ID } from './demo-gateway.js';
import { DEMO_CLIENT, type DemoMesh, type DemoService, type ServiceName } from './demo-mesh.js';
import { makeStyle, type Style, shortId, table } from './demo-report.js';

export interface DemoRunOptions {
  readonly write: (text: string) => void;
  readonly color: boolean;
}

export interface DemoOutcome {
  readonly allowedStatus: number;
  readonly deniedStatus: number;
  readonly deniedRule: string | undefined;
  readonly hops: readonly HopView[];
  /** What each hop saw of the browser user signed in at the gateway. */
  readonly browserHops: readonly HopView[];
}

export async function runDemoScript(mesh: DemoMesh, options: DemoRunOptions): Promise<DemoOutcome> {
  const s = makeStyle(options.color);
  const out = (text = '') => options.write(`${text}\n`);
  const services = [...mesh.services.values()].reverse(); // web, orders, payments
  const edge = new Agent({ connect: { ca: await readFile(mesh.bundleFile, 'utf8') } });
  try {
    out(s.bold('meshauth demo') + s.dim(` — a local mesh on 127.0.0.1, trust domain example.org`));
    out();
    out(
      table([
        [s.dim('component'), s.dim('listening'), s.dim('identity')],
        ['CA', mesh.caUrl, s.dim('spiffe://example.org/meshauth/ca')],
        ['OpenID issuer', mesh.issuer.issuer, s.dim(`client ${DEMO_CLIENT.clientId}`)],
        ['OpenID provider', mesh.gateway.providerUrl, s.dim(`user ${mesh.gateway.user.username}`)],
        ['gateway', `public ${mesh.gateway.url}`, s.dim(GATEWAY_ID)],
        ...services.map((svc) => [
          svc.name,
          `app :${svc.app.port}  inbound :${svc.sidecar.inboundPort}  outbound :${svc.sidecar.outboundPort}  admin :${svc.sidecar.adminPort}${svc.name === 'web' ? `  public ${mesh.edgeUrl}` : ''}`,
          s.dim(svc.id),
        ]),
      ]),
    );
    out();

    const token = await mesh.issuer.getToken({ clientId: DEMO_CLIENT.clientId, scope: 'orders:read' });
    out(s.bold('1. An end user calls web → orders → payments'));
    out(
      s.dim(
        `   GET ${mesh.edgeUrl}/shop/orders/42 with a client-credentials token (scope orders:read) from the issuer`,
      ),
    );
    const before = await snapshot(services);
    const allowed = await call(edge, `${mesh.edgeUrl}/shop/orders/42`, 'GET', token);
    const decisions = await decisionsSince(services, before);
    const hops = allowed.body.hops ?? [];
    out(hopTable(s, hops, decisions));
    out(
      `   → ${statusText(s, allowed.status)} ${s.dim(JSON.stringify(allowed.body.result ?? allowed.body.error ?? {}))}`,
    );
    out();

    out(s.bold('2. A call the policy denies'));
    out(s.dim(`   POST ${mesh.edgeUrl}/shop/orders/42/refund — web forwards it, orders' policy refuses it`));
    const denied = await call(edge, `${mesh.edgeUrl}/shop/orders/42/refund`, 'POST', token);
    const error = (denied.body.error ?? {}) as { code?: string; rule?: string };
    out(
      `   → ${statusText(s, denied.status)} ${error.code ?? ''} rule ${s.bold(error.rule ?? '?')} ${s.dim('(the deny is also one JSON audit line in the orders log)')}`,
    );
    out();

    out(s.bold('3. A browser user signs in at the gateway'));
    out(
      s.dim(
        `   GET ${mesh.gateway.url}/shop/orders/42 → the OpenID provider's password form → back with a session cookie`,
      ),
    );
    const beforeBrowser = await snapshot(services);
    const signedIn = await signInHeadless(
      `${mesh.gateway.url}/shop/orders/42`,
      mesh.gateway.user,
      await readFile(mesh.bundleFile, 'utf8'),
    );
    const browserBody = hopsFromPage(signedIn.body);
    const browserHops = browserBody.hops ?? [];
    out(hopTable(s, browserHops, await decisionsSince(services, beforeBrowser)));
    out(
      `   → ${statusText(s, signedIn.status)} ${s.dim(`session cookie __Host-meshauth: ${signedIn.sessionCookie ?? '(none)'}`)}`,
    );
    out();
    // payments, two hops behind web, must see the whole path the browser user's request took.
    const expectedChain = [GATEWAY_ID, services[0]?.id, services[1]?.id].join(' ');
    const browserOk = signedIn.status === 200 && browserHops.at(-1)?.chain.join(' ') === expectedChain;
    return {
      allowedStatus: browserOk ? allowed.status : signedIn.status === 200 ? 500 : signedIn.status,
      deniedStatus: denied.status,
      deniedRule: error.rule,
      hops,
      browserHops,
    };
  } finally {
    await edge.close();
  }
}

// The built CLI by its path: the lines below are copied into other terminals, whose directory may be outside the
// clone, where `npx meshauth` would fetch an unrelated package of that name from the registry.
const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export function tryItYourself(mesh: DemoMesh, color: boolean): string {
  const s = makeStyle(color);
  const web = mesh.services.get('web') as DemoService;
  const lines = [
    s.bold('Sign in with a browser'),
    `  open ${s.cyan(`${mesh.gateway.url}/shop/orders/42`)}  ${s.dim('(the demo CA signed its certificate: accept the warning)')}`,
    `  user ${s.bold(mesh.gateway.user.username)}  password ${s.bold(mesh.gateway.user.password)}  ${s.dim(`at the OpenID provider ${mesh.gateway.providerUrl}`)}`,
    s.dim('  the page shows what each hop saw: caller, end user, passport chain; sign out at /.meshauth/logout'),
    '',
    s.bold('Try it yourself while the demo runs'),
    s.dim('  # a token from the demo issuer, then the call through the mesh'),
    `  TOKEN=$(curl -s -u ${DEMO_CLIENT.clientId}:${DEMO_CLIENT.clientSecret} -d grant_type=client_credentials -d scope=orders:read ${mesh.issuer.tokenEndpoint} | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')`,
    `  curl --cacert ${mesh.bundleFile} -H "Authorization: Bearer $TOKEN" ${mesh.edgeUrl}/shop/orders/42`,
    s.dim('  # no token → 401 with WWW-Authenticate; the refund → 403 naming the rule'),
    `  curl -i --cacert ${mesh.bundleFile} ${mesh.edgeUrl}/shop/orders/42`,
    `  curl --cacert ${mesh.bundleFile} -H "Authorization: Bearer $TOKEN" -X POST ${mesh.edgeUrl}/shop/orders/42/refund`,
    s.dim('  # the CA serves its trust bundle to anyone who trusts it'),
    `  curl --cacert ${mesh.bundleFile} ${mesh.caUrl}/v1/bundle`,
    s.dim('  # policies can be checked offline'),
    `  node ${CLI} policy test ${mesh.dir}/orders-policy.yaml --from ${web.id} --method POST --path /orders/42/refund`,
    '',
    s.bold('Metrics (Prometheus text)'),
    ...[...mesh.services.values()]
      .reverse()
      .map((svc) => `  ${svc.name.padEnd(9)} http://127.0.0.1:${svc.sidecar.adminPort}/metrics`),
    // The edge's own series (meshauth_gateway_requests_total, logins, sessions) are only on the gateway's admin port,
    // which the demo picks at random and printed nowhere else.
    `  ${'gateway'.padEnd(9)} http://127.0.0.1:${mesh.gateway.gateway.adminPort}/metrics`,
    `  ${'CA'.padEnd(9)} ${mesh.caMetricsUrl}  ${s.dim(`(curl --cacert ${mesh.bundleFile})`)}`,
    '',
    s.dim(`Logs (JSON, one file per component): ${mesh.logDir}`),
  ];
  return `${lines.join('\n')}\n`;
}

/** The hops a browser page carries (the JSON in its `hops` script element). */
function hopsFromPage(html: string): DemoResponse {
  const json = /<script type="application\/json" id="hops">(.*?)<\/script>/s.exec(html)?.[1];
  if (json === undefined) return { hops: [], error: html.slice(0, 200) };
  try {
    return JSON.parse(
      json.replace(/&#(\d+);/g, (_m, code: string) => String.fromCharCode(Number(code))),
    ) as DemoResponse;
  } catch {
    return { hops: [], error: 'unreadable page' };
  }
}

function hopTable(s: Style, hops: readonly HopView[], decisions: ReadonlyMap<ServiceName, string>): string {
  const rows: string[][] = [
    [s.dim('hop'), s.dim('caller (SPIFFE ID)'), s.dim('end user'), s.dim('passport chain'), s.dim('policy')],
  ];
  for (const hop of hops) {
    const user = hop.user === undefined ? '—' : `${String(hop.user.sub)} ${s.dim(`(${String(hop.user.scope ?? '')})`)}`;
    const decision = decisions.get(hop.service as ServiceName) ?? '—';
    rows.push([
      s.cyan(hop.service),
      hop.caller ?? s.dim('(outside the mesh: bearer token)'),
      user,
      hop.chain.length === 0 ? '—' : hop.chain.map(shortId).join(' → '),
      decision.startsWith('allow') ? s.green(decision) : s.red(decision),
    ]);
  }
  return table(rows, '   ');
}

function statusText(s: Style, status: number): string {
  return status < 400 ? s.green(`HTTP ${status}`) : s.red(`HTTP ${status}`);
}

async function call(
  agent: Agent,
  url: string,
  method: 'GET' | 'POST',
  token: string,
): Promise<{ status: number; body: DemoResponse }> {
  const response = await request(url, { method, dispatcher: agent, headers: { authorization: `Bearer ${token}` } });
  const text = await response.body.text();
  try {
    return { status: response.statusCode, body: JSON.parse(text) as DemoResponse };
  } catch {
    return { status: response.statusCode, body: { hops: [], error: text } };
  }
}

type Counts = Map<string, number>;

async function snapshot(services: readonly DemoService[]): Promise<Map<ServiceName, Counts>> {
  const result = new Map<ServiceName, Counts>();
  for (const svc of services) {
    const metric = await svc.metrics.authzDecisions.get();
    result.set(svc.name, new Map(metric.values.map((v) => [`${v.labels.decision} (rule ${v.labels.rule})`, v.value])));
  }
  return result;
}

async function decisionsSince(
  services: readonly DemoService[],
  before: Map<ServiceName, Counts>,
): Promise<Map<ServiceName, string>> {
  const after = await snapshot(services);
  const result = new Map<ServiceName, string>();
  for (const [name, counts] of after) {
    for (const [key, value] of counts) {
      if (value > (before.get(name)?.get(key) ?? 0)) result.set(name, key);
    }
  }
  return result;
}
