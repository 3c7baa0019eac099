// A minimal scripted browser for gateway integration tests (the real-browser test uses Chromium): a cookie jar
// keyed by host (cookies ignore ports, RFC 6265 §8.5), Secure cookies only over https, manual redirects, and the
// demo provider's password form. Requests carry the headers a browser navigation would (Sec-Fetch-*, Accept).
import { Agent, type Dispatcher, request } from 'undici';

export interface StoredCookie {
  readonly name: string;
  readonly value: string;
  readonly attributes: string;
  readonly host: string;
}

export interface Page {
  readonly url: string;
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

const NAVIGATION = {
  accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
  'sec-fetch-mode': 'navigate',
  'sec-fetch-dest': 'document',
};

export class ScriptedBrowser {
  readonly jar = new Map<string, StoredCookie>();
  readonly #agent: Dispatcher;

  constructor(caPem: string) {
    this.#agent = new Agent({ connect: { ca: caPem } });
  }

  cookie(name: string): StoredCookie | undefined {
    for (const c of this.jar.values()) if (c.name === name) return c;
    return undefined;
  }

  cookiesStartingWith(prefix: string): StoredCookie[] {
    return [...this.jar.values()].filter((c) => c.name.startsWith(prefix));
  }

  setCookie(host: string, name: string, value: string): void {
    this.jar.set(`${host}|${name}`, { name, value, attributes: '', host });
  }

  /** One request, no redirect following. `site` sets Sec-Fetch-Site (default same-origin for non-GET). */
  async fetch(
    url: string,
    options: { method?: string; headers?: Record<string, string>; body?: string; navigate?: boolean } = {},
  ): Promise<Page> {
    const target = new URL(url);
    const cookies = [...this.jar.values()]
      .filter((c) => c.host === target.hostname && (target.protocol === 'https:' || !/;\s*secure/i.test(c.attributes)))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
    const response = await request(url, {
      method: (options.method ?? 'GET') as 'GET',
      dispatcher: this.#agent,
      headers: {
        ...(options.navigate === false ? {} : NAVIGATION),
        ...(cookies === '' ? {} : { cookie: cookies }),
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { body: options.body }),
    });
    const body = await response.body.text();
    const setCookie = response.headers['set-cookie'];
    for (const line of setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie]) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const attrs = attributes.join(';');
      if (/max-age=0\b/i.test(attrs) || value === '') this.jar.delete(`${target.hostname}|${name}`);
      else this.jar.set(`${target.hostname}|${name}`, { name, value, attributes: attrs, host: target.hostname });
    }
    return { url, status: response.statusCode, headers: response.headers, body };
  }

  /** Follows redirects (at most 10) like a navigation. */
  async navigate(
    url: string,
    options: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ): Promise<Page> {
    let page = await this.fetch(url, options);
    for (let i = 0; i < 10 && page.status >= 300 && page.status < 400; i++) {
      const location = page.headers.location as string;
      page = await this.fetch(new URL(location, page.url).href);
    }
    return page;
  }

  /** On the provider's login page: submits the password form and follows the redirects back. */
  async submitLogin(page: Page, username: string, password: string): Promise<Page> {
    const action = /<form method="post" action="([^"]+)"/.exec(page.body)?.[1];
    if (action === undefined)
      throw new Error(`no login form on ${page.url}: ${page.status} ${page.body.slice(0, 200)}`);
    return this.navigate(new URL(action, page.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username, password }).toString(),
    });
  }

  /** Navigates to a protected URL, signs in at the provider, returns the page it lands on. */
  async signIn(url: string, username: string, password: string): Promise<Page> {
    const login = await this.navigate(url);
    return this.submitLogin(login, username, password);
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
