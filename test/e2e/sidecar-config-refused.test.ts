// `meshauth sidecar` refuses, before it binds anything, configs that used to start badly: exit 2 with
// [MESHAUTH_ERR_CONFIG_INVALID] naming the file and the key, never exit 1 with a raw Node error (two listeners on
// one port: "listen EADDRINUSE") or a sidecar that is up but fails every request at once (a timeout past the range
// of a Node timer fires after 1 ms). A port held by another process is only found at bind: exit 2 with
// [MESHAUTH_ERR_LISTEN] naming the key.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { assertBuilt, MAIN } from '../helpers/meshauth-cli.js';
import { runCommand } from '../helpers/sidecar-harness.js';

const dir = mkdtempSync(join(tmpdir(), 'meshauth-e2e-refused-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('meshauth sidecar: configs refused up front', () => {
  let ports: number[];
  beforeAll(async () => {
    assertBuilt(['src/config', 'src/cli', 'src/sidecar']);
    ports = [await freePort(), await freePort(), await freePort()];
  });

  const run = async (name: string, lines: string[], env?: Readonly<Record<string, string>>) => {
    const file = join(dir, name);
    writeFileSync(
      file,
      ['trustDomain: example.org', 'ca: { url: "https://127.0.0.1:1", bundle: /nonexistent, token: /nonexistent }']
        .concat(lines)
        .join('\n'),
    );
    // A sidecar that does start is stopped after 10 s (the failing case before the fix would run for ever).
    const result = await runCommand(process.execPath, [MAIN, 'sidecar', '--config', file], {
      timeoutMs: 10_000,
      ...(env === undefined ? {} : { env }),
    });
    return { file, ...result };
  };

  it('fail/admin.listen on the inbound listener → exit 2 naming both keys', async () => {
    const [inbound, outbound] = ports as [number, number, number];
    const result = await run('clash.yaml', [
      `inbound: { listen: "127.0.0.1:${inbound}", app: "127.0.0.1:1" }`,
      `outbound: { listen: "127.0.0.1:${outbound}" }`,
      `admin: { listen: "127.0.0.1:${inbound}" }`,
    ]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(`${result.file}: admin.listen: expected an address of its own`);
    expect(result.stderr).toContain('[MESHAUTH_ERR_CONFIG_INVALID]');
    expect(result.stderr).not.toContain('EADDRINUSE');
  });

  // A file the config names that is missing is reported with the config file and the key that named it, like any
  // config error; it used to name the path alone (policy) or the key without the file (external listener).
  it.each([
    ['inbound.policy', 'inbound: { policy: /nonexistent/policy.yaml }', '/nonexistent/policy.yaml', 'cannot read'],
    [
      'inbound.external.cert',
      'inbound: { endUser: { issuers: [ { issuer: "https://127.0.0.1:9", audiences: [x], jwksUri: "https://127.0.0.1:9/jwks", algorithms: [ES256] } ] }, external: { listen: "127.0.0.1:0", cert: /nonexistent/tls.crt, key: /nonexistent/tls.key } }',
      '/nonexistent/tls.crt',
      'certificate file /nonexistent/tls.crt: cannot be read (ENOENT)',
    ],
  ])('fail/a missing file at %s → exit 2 naming the config file and the key', async (key, line, path, why) => {
    const result = await run(`missing-${key}.yaml`, [line]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(`meshauth: ${result.file}: ${key}: ${why}`);
    expect(result.stderr).toContain(`${path}`);
    expect(result.stderr).toContain('[MESHAUTH_ERR_FILE_UNREADABLE]');
  });

  it('fail/a 25d outbound.timeout → exit 2 naming the key', async () => {
    const [inbound, outbound, admin] = ports as [number, number, number];
    const result = await run('timeout.yaml', [
      `inbound: { listen: "127.0.0.1:${inbound}", app: "127.0.0.1:1" }`,
      `outbound: { listen: "127.0.0.1:${outbound}", http2: false, timeout: 25d }`,
      `admin: { listen: "127.0.0.1:${admin}" }`,
    ]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(`${result.file}: outbound.timeout: expected at most 24d`);
  });

  it('fail/inbound.limits.maxConcurrentStreams past the HTTP/2 range → exit 2 (it used to start, then crash)', async () => {
    const [inbound, outbound, admin] = ports as [number, number, number];
    const result = await run('streams.yaml', [
      `inbound: { listen: "127.0.0.1:${inbound}", app: "127.0.0.1:1", limits: { maxConcurrentStreams: 5000000000 } }`,
      `outbound: { listen: "127.0.0.1:${outbound}" }`,
      `admin: { listen: "127.0.0.1:${admin}" }`,
    ]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(`${result.file}: inbound.limits.maxConcurrentStreams: expected at most 4294967295`);
  });

  it('fail/a quoted app probe port → exit 2 saying what is accepted and what was written', async () => {
    const [inbound, outbound, admin] = ports as [number, number, number];
    const result = await run('probe-port.yaml', [
      `inbound: { listen: "127.0.0.1:${inbound}", app: "127.0.0.1:1" }`,
      `outbound: { listen: "127.0.0.1:${outbound}" }`,
      `admin: { listen: "127.0.0.1:${admin}", appProbes: { c: { livez: { port: "80", path: /healthz } } } }`,
    ]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(
      `${result.file}: admin.appProbes.c.livez.port: expected a whole number from 1 to 65535, not the text "80" (write it without quotes)`,
    );
  });

  it('fail/a DNS server with port 0 → exit 2 (it used to abort on a native assertion, exit 134)', async () => {
    const [inbound, outbound, admin] = ports as [number, number, number];
    const result = await run('dns.yaml', [
      `inbound: { listen: "127.0.0.1:${inbound}", app: "127.0.0.1:1" }`,
      `outbound: { listen: "127.0.0.1:${outbound}", dns: { servers: ["127.0.0.1:0"] } }`,
      `admin: { listen: "127.0.0.1:${admin}" }`,
    ]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(`${result.file}: outbound.dns.servers[0]: expected the IP address and port`);
  });

  it('fail/an HS256 end-user algorithm → exit 2 naming the file and the key (the file used to be left out)', async () => {
    const [inbound, outbound, admin] = ports as [number, number, number];
    const result = await run('hs256.yaml', [
      `inbound: { listen: "127.0.0.1:${inbound}", app: "127.0.0.1:1", endUser: { issuers: [`,
      '  { issuer: "https://idp.example.com", audiences: [shop], algorithms: [HS256] } ] } }',
      `outbound: { listen: "127.0.0.1:${outbound}" }`,
      `admin: { listen: "127.0.0.1:${admin}" }`,
    ]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(
      `meshauth: ${result.file}: inbound.endUser.issuers[0].algorithms: algorithm "HS256" is not allowed`,
    );
    expect(result.stderr).toContain('[MESHAUTH_ERR_CONFIG_INVALID]');
  });

  it('fail/an HS256 algorithm set by MESHAUTH_INBOUND_END_USER → exit 2 naming the variable, not only the file', async () => {
    // The pod's end-user ConfigMap arrives as this variable; the file (here without endUser) never held the value.
    const [inbound, outbound, admin] = ports as [number, number, number];
    const endUser = { issuers: [{ issuer: 'https://idp.example.com', audiences: ['shop'], algorithms: ['HS256'] }] };
    const result = await run(
      'env-hs256.yaml',
      [
        `inbound: { listen: "127.0.0.1:${inbound}", app: "127.0.0.1:1" }`,
        `outbound: { listen: "127.0.0.1:${outbound}" }`,
        `admin: { listen: "127.0.0.1:${admin}" }`,
      ],
      { MESHAUTH_INBOUND_END_USER: JSON.stringify(endUser) },
    );
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(
      `meshauth: ${result.file}: inbound.endUser.issuers[0].algorithms (from MESHAUTH_INBOUND_END_USER): algorithm "HS256" is not allowed`,
    );
  });

  it('fail/an unreadable end-user caFile → exit 2 naming the file and the issuer entry', async () => {
    const [inbound, outbound, admin] = ports as [number, number, number];
    const result = await run('ca-file.yaml', [
      `inbound: { listen: "127.0.0.1:${inbound}", app: "127.0.0.1:1", endUser: { issuers: [`,
      '  { issuer: "https://idp.example.com", audiences: [shop], algorithms: [RS256], caFile: /nonexistent/idp.pem } ] } }',
      `outbound: { listen: "127.0.0.1:${outbound}" }`,
      `admin: { listen: "127.0.0.1:${admin}" }`,
    ]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(
      `meshauth: ${result.file}: inbound.endUser.issuers[0].caFile: CA file /nonexistent/idp.pem: cannot be read (ENOENT)`,
    );
  });

  it('fail/an http:// ca.url → exit 2 naming the key (it used to start and retry the CA for ever)', async () => {
    const [inbound, outbound, admin] = ports as [number, number, number];
    const file = join(dir, 'http-ca.yaml');
    writeFileSync(
      file,
      [
        'trustDomain: example.org',
        'ca: { url: "http://127.0.0.1:1", bundle: /nonexistent, token: /nonexistent }',
        `inbound: { listen: "127.0.0.1:${inbound}", app: "127.0.0.1:1" }`,
        `outbound: { listen: "127.0.0.1:${outbound}" }`,
        `admin: { listen: "127.0.0.1:${admin}" }`,
      ].join('\n'),
    );
    const result = await runCommand(process.execPath, [MAIN, 'sidecar', '--config', file], { timeoutMs: 10_000 });
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toContain(`${file}: ca.url: expected an https:// URL`);
    expect(result.stderr).toContain('[MESHAUTH_ERR_CONFIG_INVALID]');
    expect(result.stderr).not.toContain('sidecar listening');
  });

  it('fail/admin.listen on a port another process holds → exit 2 naming the key and the errno', async () => {
    const [inbound, outbound] = ports as [number, number, number];
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const taken = (holder.address() as { port: number }).port;
    try {
      const result = await run('taken.yaml', [
        `inbound: { listen: "127.0.0.1:${inbound}", app: "127.0.0.1:1" }`,
        `outbound: { listen: "127.0.0.1:${outbound}" }`,
        `admin: { listen: "127.0.0.1:${taken}" }`,
      ]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain(`admin.listen: cannot listen on 127.0.0.1:${taken}: EADDRINUSE`);
      expect(result.stderr).toContain('[MESHAUTH_ERR_LISTEN]');
    } finally {
      await new Promise((resolve) => holder.close(resolve));
    }
  });

  it('fail/inbound.listen and admin.listen both on ports other processes hold → exit 2 naming both keys', async () => {
    const [, outbound] = ports as [number, number, number];
    const holders = [createServer(), createServer()];
    const taken: number[] = [];
    for (const holder of holders) {
      await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
      taken.push((holder.address() as { port: number }).port);
    }
    try {
      const result = await run('both-taken.yaml', [
        `inbound: { listen: "127.0.0.1:${taken[0]}", app: "127.0.0.1:1" }`,
        `outbound: { listen: "127.0.0.1:${outbound}" }`,
        `admin: { listen: "127.0.0.1:${taken[1]}" }`,
      ]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain(`inbound.listen: cannot listen on 127.0.0.1:${taken[0]}: EADDRINUSE`);
      expect(result.stderr).toContain(`admin.listen: cannot listen on 127.0.0.1:${taken[1]}: EADDRINUSE`);
      expect(result.stderr).toContain('[MESHAUTH_ERR_LISTEN]');
    } finally {
      for (const holder of holders) await new Promise((resolve) => holder.close(resolve));
    }
  });

  it('fail/two outbound.tcp addresses other processes hold → exit 2 naming both routes', async () => {
    const [inbound, outbound, admin] = ports as [number, number, number];
    const holders = [createServer(), createServer()];
    const taken: number[] = [];
    for (const holder of holders) {
      await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
      taken.push((holder.address() as { port: number }).port);
    }
    const route = '{ address: "127.0.0.1:1", ids: ["spiffe://example.org/ns/data/sa/db"] }';
    try {
      const result = await run('tcp-taken.yaml', [
        `inbound: { listen: "127.0.0.1:${inbound}", app: "127.0.0.1:1" }`,
        `outbound: { listen: "127.0.0.1:${outbound}", tcp: { "127.0.0.1:${taken[0]}": ${route}, "127.0.0.1:${taken[1]}": ${route} } }`,
        `admin: { listen: "127.0.0.1:${admin}" }`,
      ]);
      expect(result.code, result.stderr).toBe(2);
      for (const port of taken) {
        expect(result.stderr).toContain(
          `outbound.tcp["127.0.0.1:${port}"]: cannot listen on 127.0.0.1:${port}: EADDRINUSE`,
        );
      }
      expect(result.stderr).toContain('[MESHAUTH_ERR_LISTEN]');
    } finally {
      for (const holder of holders) await new Promise((resolve) => holder.close(resolve));
    }
  });
});
