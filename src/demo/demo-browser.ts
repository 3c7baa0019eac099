// `demo --once` signs in the way a browser would, without one: a cookie jar per host, redirects followed by hand,
// the provider's password form submitted. Only for the demo's own local provider and gateway.
import { Agent, request } from 'undici';

export interface SignedInPage {
  readonly status: number;
  readonly body: string;
  /** Attributes of the session cookie as the gateway set them (`HttpOnly; Secure; …`). */
  readonly sessionCookie: string | undefined;
}

export async function signInHeadless(
  url: string,
  user: { readonly username: string; readonly password: string },
  caPem: string,
): Promise<SignedInPage> {
  const agent = new Agent({ connect: { ca: caPem } });
  const jar = new Map<string, Map<string, string>>();
  let sessionCookie: string | undefined;
  const go = async (target: string, init: { method?: string; body?: string } = {}) => {
    const at = new URL(target);
    const cookies = [...(jar.get(at.hostname) ?? new Map<string, string>())].map(([n, v]) => `${n}=${v}`).join('; ');
    const response = await request(target, {
      dispatcher: agent,
      method: (init.method ?? 'GET') as 'GET',
      headers: {
        accept: 'text/html',
        'sec-fetch-mode': 'navigate',
        ...(cookies === '' ? {} : { cookie: cookies }),
        ...(init.body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', origin: at.origin }),
      },
      ...(init.body === undefined ? {} : { body: init.body }),
    });
    const setCookie = response.headers['set-cookie'];
    for (const line of setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie]) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const hostJar = jar.get(at.hostname) ?? new Map<string, string>();
      jar.set(at.hostname, hostJar);
      if (/max-age=0/i.test(line)) hostJar.delete(name);
      else hostJar.set(name, pair.slice(eq + 1).trim());
      if (name === '__Host-meshauth') sessionCookie = attributes.map((a) => a.trim()).join('; ');
    }
    return {
      status: response.statusCode,
      location: response.headers.location as string | undefined,
      body: await response.body.text(),
    };
  };
  const follow = async (start: string, init?: { method?: string; body?: string }) => {
    let target = start;
    let page = await go(target, init);
    for (let i = 0; i < 10 && page.status >= 300 && page.status < 400 && page.location !== undefined; i++) {
      target = new URL(page.location, target).href;
      page = await go(target);
    }
    return { ...page, url: target };
  };
  try {
    const login = await follow(url);
    const action = /<form method="post" action="([^"]+)"/.exec(login.body)?.[1];
    if (action === undefined)
      throw new Error(`expected the provider's sign-in form at ${login.url} (HTTP ${login.status})`);
    const landed = await follow(new URL(action, login.url).href, {
      method: 'POST',
      body: new URLSearchParams({ username: user.username, password: user.password }).toString(),
    });
    return { status: landed.status, body: landed.body, sessionCookie };
  } finally {
    await agent.close();
  }
}
