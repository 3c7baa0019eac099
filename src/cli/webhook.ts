// `meshauth webhook --listen HOST:PORT --tls-cert FILE --tls-key FILE [--config inject.yaml]`: the
// mutating admission webhook that injects pods of opted-in namespaces. Prints one "listening" line on stdout;
// on SIGTERM keeps answering for a few seconds (the pod's endpoint is being removed), then, as at once on SIGINT,
// stops accepting, finishes in-flight reviews and exits 0.
import type { Command } from 'commander';
import { httpsUrl, parseListenAddress } from '../ca/listen-address.js';
import { WebhookServer } from '../k8s/webhook-server.js';
import { createLogger, Metrics } from '../telemetry/index.js';
import { loadInjectConfig } from './inject.js';

/**
 * How long the webhook keeps answering after SIGTERM. Kubernetes removes a terminating pod's endpoint while it
 * sends the signal, and the API server keeps calling this replica until the change reaches it: a call refused then
 * admits the pod without its sidecar (failurePolicy Ignore), unseen by the webhook's metrics. Well inside the
 * default 30 s grace period, with the in-flight wait after it.
 */
const TERMINATION_DELAY_MS = 5_000;

interface WebhookOptions {
  readonly listen: string;
  readonly tlsCert: string;
  readonly tlsKey: string;
  readonly config?: string;
  readonly logLevel: string;
}

export function registerWebhookCommand(program: Command): void {
  program
    .command('webhook')
    .description('run the admission webhook that injects the sidecar into pods (POST /mutate, /healthz, /metrics)')
    .requiredOption('--listen <host:port>', 'HTTPS listen address, e.g. 0.0.0.0:8443')
    .requiredOption('--tls-cert <file>', 'serving certificate chain (PEM); re-read when the file changes')
    .requiredOption('--tls-key <file>', 'serving private key (PEM); re-read when the file changes')
    .option('-c, --config <file>', 'inject.yaml (docs/injection.md)')
    .option('--log-level <level>', 'log level (trace, debug, info, warn, error, fatal, silent)', 'info')
    .action(async (options: WebhookOptions) => {
      const address = parseListenAddress(options.listen);
      const config = await loadInjectConfig(options.config);
      const logger = createLogger({ name: 'webhook', level: options.logLevel });
      const server = new WebhookServer({
        host: address.host,
        port: address.port,
        certFile: options.tlsCert,
        keyFile: options.tlsKey,
        config,
        metrics: new Metrics({ defaultMetrics: true }),
        logger,
      });
      const stop = stopSignal();
      const port = await server.listen();
      process.stdout.write(`meshauth webhook listening on ${httpsUrl(address.host, port)}\n`);
      const signal = await stop.signal;
      const delayMs = signal === 'SIGTERM' ? TERMINATION_DELAY_MS : 0;
      logger.info({ signal, delayMs }, 'webhook stopping');
      // A second signal ends the wait at once; a third, while reviews finish, ends the process (no handler is left).
      const second = stopSignal();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([new Promise<void>((resolve) => (timer = setTimeout(resolve, delayMs))), second.signal]);
      clearTimeout(timer);
      second.cancel();
      await server.close();
      process.exit(0);
    });
}

/** The next SIGTERM or SIGINT; both listeners go once either comes, or on cancel(). */
function stopSignal(): { readonly signal: Promise<NodeJS.Signals>; cancel(): void } {
  let onSignal: (signal: NodeJS.Signals) => void = () => {};
  const cancel = () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = (received) => {
      cancel();
      resolve(received);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  return { signal, cancel };
}
