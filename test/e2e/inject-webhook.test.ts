// `meshauth webhook` as deployed (the built CLI), driven by curl as a real HTTPS client that verifies the serving
// certificate: an AdmissionReview for a pod comes back with a JSON Patch that gives what `meshauth inject` writes;
// /healthz and /metrics answer on the same port; SIGTERM exits 0, after answering the reviews already arriving.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls } from 'node:tls';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { podCreateReview } from '../helpers/admission-review.js';
import { applyJsonPatch, type Operation } from '../helpers/json-patch.js';
import { meshauth, type RunningCli, spawnMeshauth } from '../helpers/meshauth-cli.js';
import { available, runCommand } from '../helpers/sidecar-harness.js';
import { waitFor } from '../helpers/wait.js';
import { makeWebhookCert, post, startWebhookCli } from '../helpers/webhook-tls.js';

const FIXTURES = new URL('../fixtures/k8s/', import.meta.url).pathname;
const HAVE_CURL = available('curl');
if (!HAVE_CURL) console.warn('inject-webhook: curl not on PATH, skipping');

// The two groups run side by side, each on webhook processes of its own: most of their time is the webhook's 5 s
// wait after SIGTERM (TERMINATION_DELAY_MS, fixed in the CLI). Within this group the cases share one webhook and run
// in order (the review, then its count in /metrics, then the stop).
describe.skipIf(!HAVE_CURL)('meshauth webhook (CLI, curl)', { concurrent: true }, () => {
  let dir: string;
  let webhook: RunningCli;
  let url: string;
  const curl = (path: string, args: readonly string[] = []) =>
    runCommand('curl', [
      '-sS',
      '--cacert',
      join(dir, 'serving.ca.crt'),
      '-w',
      '\n%{http_code}',
      ...args,
      `${url}${path}`,
    ]);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'meshauth-webhook-e2e-'));
    const cert = makeWebhookCert(dir, 'serving');
    writeFileSync(join(dir, 'tls.crt'), cert.certPem);
    writeFileSync(join(dir, 'tls.key'), cert.keyPem);
    writeFileSync(join(dir, 'inject.yaml'), 'trustDomain: example.org\nnoProxy: [".example.com"]\n');
    webhook = spawnMeshauth(
      [
        'webhook',
        '--listen',
        '127.0.0.1:0',
        '--tls-cert',
        'tls.crt',
        '--tls-key',
        'tls.key',
        '--config',
        'inject.yaml',
      ],
      { cwd: dir },
    );
    const line = await webhook.line(/^meshauth webhook listening on https:/);
    url = (line.split(' on ')[1] as string).trim();
  });
  afterAll(async () => {
    await webhook?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it.sequential("ok/a pod review is answered with the patch that gives inject's output", async ({ expect }) => {
    const pod = parseAllDocuments(readFileSync(join(FIXTURES, 'pod.yaml'), 'utf8'))[0]?.toJS() as Record<
      string,
      unknown
    >;
    const injectedText = (
      await meshauth(['inject', '-f', join(FIXTURES, 'pod.yaml'), '--config', 'inject.yaml'], { cwd: dir })
    ).stdout;
    const expected = parseAllDocuments(injectedText, { version: '1.1' })[0]?.toJS() as unknown;
    writeFileSync(
      join(dir, 'review.json'),
      JSON.stringify({
        apiVersion: 'admission.k8s.io/v1',
        kind: 'AdmissionReview',
        request: {
          uid: '0e1c2d3f-aaaa-bbbb-cccc-123456789abc',
          kind: { group: '', version: 'v1', kind: 'Pod' },
          resource: { group: '', version: 'v1', resource: 'pods' },
          namespace: 'shop',
          operation: 'CREATE',
          object: pod,
        },
      }),
    );
    const result = await curl('/mutate', [
      '-H',
      'content-type: application/json',
      '--data-binary',
      `@${join(dir, 'review.json')}`,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const [body, status] = splitStatus(result.stdout);
    expect(status).toBe('200');
    const answer = JSON.parse(body) as {
      response: { uid: string; allowed: boolean; patchType: string; patch: string };
    };
    expect(answer.response).toMatchObject({
      uid: '0e1c2d3f-aaaa-bbbb-cccc-123456789abc',
      allowed: true,
      patchType: 'JSONPatch',
    });
    const ops = JSON.parse(Buffer.from(answer.response.patch, 'base64').toString('utf8')) as Operation[];
    expect(applyJsonPatch(pod, ops)).toEqual(expected);
  });

  it.sequential('ok/healthz and metrics (the review above counted as injected)', async ({ expect }) => {
    expect(splitStatus((await curl('/healthz')).stdout)).toEqual(['ok\n', '200']);
    const [metrics] = splitStatus((await curl('/metrics')).stdout);
    expect(metrics).toMatch(/^meshauth_webhook_reviews_total\{result="injected"\} 1$/m);
  });

  it.sequential('fail/a plain-HTTP client gets no answer from the TLS port', async ({ expect }) => {
    const plain = await runCommand('curl', ['-sS', '--max-time', '5', `${url.replace('https:', 'http:')}/healthz`]);
    expect(plain.code).not.toBe(0);
  });

  it.sequential('ok/SIGTERM exits 0', async ({ expect }) => {
    expect(await webhook.stop()).toBe(0);
  });
});

// Each case starts a webhook of its own in a directory of its own: they run side by side.
describe.concurrent('meshauth webhook (CLI): SIGTERM', () => {
  it('ok/after SIGTERM new reviews are still answered for a while (the endpoint is being removed), then exit 0', async ({
    expect,
  }) => {
    // The webhook stopped accepting at the signal, while the API server may still call it until the endpoint
    // removal reaches it: such a refused call admits the pod without its sidecar (failurePolicy Ignore).
    const dir = mkdtempSync(join(tmpdir(), 'meshauth-webhook-term-'));
    const webhook = await startWebhookCli(dir);
    try {
      webhook.stop();
      await waitFor('the stopping log line', () => /webhook stopping/.test(webhook.stderr()), 10_000);
      const answer = await post(webhook.port, webhook.cert.caPem, '/mutate', podReview('u-late'));
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ response: { uid: 'u-late', allowed: true } });
      await waitFor('the webhook to exit', () => webhook.exited(), 20_000);
      expect(webhook.exited()).toEqual({ code: 0, signal: null });
    } finally {
      webhook.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 40_000);

  it('ok/a review still arriving at SIGTERM is answered (Connection: close), then the webhook exits 0', async ({
    expect,
  }) => {
    // close() ended every connection at once: the review got no answer, which the API server counts as a failed
    // call (failurePolicy Ignore: the pod is admitted without its sidecar).
    const dir = mkdtempSync(join(tmpdir(), 'meshauth-webhook-term-'));
    const webhook = await startWebhookCli(dir);
    try {
      const body = podReview('u-term');
      const socket = connectTls({
        host: '127.0.0.1',
        port: webhook.port,
        ca: webhook.cert.caPem,
        servername: 'meshauth-webhook.meshauth.svc',
      });
      let received = '';
      socket.setEncoding('utf8').on('data', (chunk: string) => {
        received += chunk;
      });
      const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', () => resolve());
        socket.once('error', reject);
      });
      const head = `POST /mutate HTTP/1.1\r\nhost: meshauth-webhook.meshauth.svc\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`;
      socket.write(head + body.slice(0, 20));
      webhook.stop();
      // Stopped accepting (the listener is closed): the signal was handled before the rest of the body is sent.
      await waitFor('the webhook to stop accepting', () => refused(webhook.port), 10_000);
      socket.write(body.slice(20));
      await ended;
      expect(received).toMatch(/^HTTP\/1\.1 200 /);
      expect(received).toMatch(/^connection: close\r$/im);
      expect(received).toContain('"uid":"u-term"');
      await waitFor('the webhook to exit', () => webhook.exited(), 15_000);
      expect(webhook.exited()).toEqual({ code: 0, signal: null });
    } finally {
      webhook.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('ok/a signal while reviews finish ends the process, whichever came first (SIGINT, then SIGTERM)', async ({
    expect,
  }) => {
    // The first signal's listener for the other signal stayed installed: after SIGINT, a SIGTERM during the wait for
    // a review still arriving was swallowed, and the process lived on until that wait timed out.
    const dir = mkdtempSync(join(tmpdir(), 'meshauth-webhook-term-'));
    const webhook = await startWebhookCli(dir);
    const socket = connectTls({
      host: '127.0.0.1',
      port: webhook.port,
      ca: webhook.cert.caPem,
      servername: 'meshauth-webhook.meshauth.svc',
    });
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', () => resolve());
        socket.once('error', reject);
      });
      socket.on('error', () => {});
      // A review's head and part of its body: close() waits for the rest.
      socket.write(
        'POST /mutate HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{',
      );
      webhook.signal('SIGINT');
      await waitFor('the webhook to stop accepting', () => refused(webhook.port), 10_000);
      webhook.signal('SIGTERM');
      await waitFor('the webhook to exit', () => webhook.exited(), 20_000);
      expect(webhook.exited()).toEqual({ code: null, signal: 'SIGTERM' });
    } finally {
      socket.destroy();
      webhook.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 40_000);
});

function podReview(uid: string): string {
  return JSON.stringify(
    podCreateReview({ metadata: { name: 'p' }, spec: { containers: [{ name: 'app', image: 'a:1' }] } }, uid),
  );
}

/** True when a TCP connection to 127.0.0.1:`port` is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

function splitStatus(output: string): [string, string] {
  const at = output.lastIndexOf('\n');
  return [output.slice(0, at), output.slice(at + 1)];
}
