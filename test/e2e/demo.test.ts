// `meshauth demo --once` (npm start without the wait): the whole local mesh comes up, the end-user call goes
// through web → orders → payments with the user and chain visible at each hop, the refund is denied by its rule,
// and the process exits 0 having stopped everything it started.
import { execFile, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MAIN } from '../helpers/meshauth-cli.js';
import { waitFor } from '../helpers/wait.js';

function runDemoOnce(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, 'demo', '--once'], { env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('meshauth demo --once', () => {
  it('ok/shows each hop, the denied call and its rule, then exits 0', async () => {
    const { code, stdout, stderr } = await runDemoOnce();
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(
      /orders\s+spiffe:\/\/example\.org\/ns\/shop\/sa\/web\s+shop-frontend \(orders:read\)\s+web\s+allow \(rule web-reads-orders\)/,
    );
    expect(stdout).toMatch(
      /payments\s+spiffe:\/\/example\.org\/ns\/shop\/sa\/orders\s+shop-frontend \(orders:read\)\s+web → orders\s+allow \(rule orders-reads-payments\)/,
    );
    expect(stdout).toContain('HTTP 200');
    expect(stdout).toMatch(/HTTP 403 MESHAUTH_ERR_FORBIDDEN rule no-refunds-from-web/);
    // The browser user signed in at the gateway: every hop sees alice, payments sees the whole path.
    expect(stdout).toMatch(
      /web\s+spiffe:\/\/example\.org\/ns\/edge\/sa\/gateway\s+alice \(orders:read\)\s+gateway\s+allow/,
    );
    expect(stdout).toMatch(
      /payments\s+spiffe:\/\/example\.org\/ns\/shop\/sa\/orders\s+alice \(orders:read\)\s+gateway → web → orders\s+allow/,
    );
    expect(stdout).toMatch(/session cookie __Host-meshauth: Path=\/; Secure; HttpOnly; SameSite=Lax/);
    expect(stdout).not.toContain('\u001b['); // plain output when not a TTY
    expect(stderr).not.toMatch(/at .+\.js:\d+/); // no stack traces
  }, 90_000);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('meshauth demo (npm start)', () => {
  it('ok/its policy command runs from any directory; its parent (npm) killed, the demo stops too instead of keeping its ports and the demo CA', async () => {
    // The shell stands for npm: it runs the demo as its child and dies without passing a signal on.
    const parent = spawn('sh', ['-c', `"${process.execPath}" "${MAIN}" demo & echo "demo-pid $!"; wait`], {
      env: { ...process.env, NO_COLOR: '1' },
    });
    let stdout = '';
    parent.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const pid = Number((await waitFor('the demo PID', () => /demo-pid (\d+)/.exec(stdout)?.[1], 10_000)) ?? 0);
    try {
      await waitFor('the demo to be up', () => stdout.includes('Press Ctrl-C to stop.'), 60_000, 100);
      // The offline policy check it prints is copied into another terminal, often outside the clone.
      const printed = /^ {2}node (\S+) (policy test .*)$/m.exec(stdout);
      expect(printed?.[1]).toBe(MAIN);
      const args = (printed?.[2] ?? '').split(' ');
      const { stdout: verdict } = await promisify(execFile)(process.execPath, [MAIN, ...args], {
        cwd: tmpdir(),
        timeout: 30_000,
      });
      expect(verdict).toMatch(/deny/i);
      parent.kill('SIGKILL');
      await waitFor('the demo to stop', () => !alive(pid), 30_000, 100);
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
      parent.kill('SIGKILL');
    }
    expect(alive(pid)).toBe(false);
  }, 120_000);
});
