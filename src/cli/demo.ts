// `meshauth demo [--once]`: the whole mesh on 127.0.0.1, an authenticated call chain, a denied call,
// and what to try by hand. `--once` runs the script and exits 0 (1 if the demo's own checks fail); otherwise it
// keeps running until Ctrl-C / SIGTERM (or its parent, npm, ends) and then stops everything it started.
import type { Command } from 'commander';

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run a local demo mesh: CA, OpenID issuer, web → orders → payments with sidecars (npm start)')
    .option('--once', 'run the demo calls, print what each hop saw, then stop and exit')
    .action(async (options: { once?: boolean }) => {
      if (!demoDependenciesPresent()) {
        process.stderr.write(
          'meshauth demo needs the development dependency oidc-provider, which this installation (the container image) leaves out.\n' +
            'Run it from a source checkout: npm ci && npm start\n',
        );
        process.exit(2);
      }
      // Loaded here, not at the top: the demo (CA, oidc-provider, three meshes) is never part of `meshauth sidecar`.
      const { startDemoMesh } = await import('../demo/demo-mesh.js');
      const { runDemoScript, tryItYourself } = await import('../demo/demo-run.js');
      const color = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
      const write = (text: string) => process.stdout.write(text);
      write('starting the CA, the OpenID issuer and three services with their sidecars…\n\n');
      const mesh = await startDemoMesh();
      let ok = false;
      try {
        const outcome = await runDemoScript(mesh, { write, color });
        ok = outcome.allowedStatus === 200 && outcome.deniedStatus === 403;
        if (!options.once) {
          write(tryItYourself(mesh, color));
          write('\nPress Ctrl-C to stop.\n');
          await untilStopped();
          write('\nstopping…\n');
        }
      } finally {
        await mesh.close();
      }
      if (!ok) process.stderr.write('meshauth demo: the demo calls did not give the expected answers (see above)\n');
      process.exit(ok ? 0 : 1);
    });
}

/** The demo's OpenID provider is a devDependency: the production image prunes it. */
function demoDependenciesPresent(): boolean {
  try {
    import.meta.resolve('oidc-provider');
    return true;
  } catch {
    return false;
  }
}

/**
 * Ctrl-C, SIGTERM or SIGHUP (its terminal closed), or its parent gone. `npm start` runs the demo under npm (and a
 * shell): a SIGTERM sent to npm's PID ends npm without passing the signal on, and the demo, re-parented, would keep
 * its ports and its temporary directory with the demo CA's keys. A changed parent PID is checked once a second.
 */
function untilStopped(): Promise<void> {
  const parent = process.ppid;
  return new Promise<void>((resolve) => {
    const stop = () => {
      clearInterval(watch);
      resolve();
    };
    const watch = setInterval(() => {
      if (process.ppid !== parent) stop();
    }, 1_000);
    watch.unref();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    process.once('SIGHUP', stop);
  });
}
