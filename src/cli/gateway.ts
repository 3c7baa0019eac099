// `meshauth gateway --config gateway.yaml`: load and validate the gateway config (bad config → exit 2 naming file
// and key), start the edge gateway, and on SIGTERM/SIGINT drain (bounded by drainTimeout) and exit 0.
import type { Command } from 'commander';
import { createLogger, Metrics } from '../telemetry/index.js';

export function registerGatewayCommand(program: Command): void {
  program
    .command('gateway')
    .description('run the edge gateway: public TLS, browser single sign-on (OIDC), API tokens, edge policy, passports')
    .requiredOption('-c, --config <file>', 'gateway config (YAML, docs/gateway.md)')
    .option('--log-level <level>', 'log level (trace, debug, info, warn, error, fatal, silent)', 'info')
    .action(async (options: { config: string; logLevel: string }) => {
      // Loaded here, not at the top: the gateway (openid-client, jose) is never part of `meshauth sidecar`.
      const logger = createLogger({ name: 'gateway', level: options.logLevel }); // a bad --log-level: usage, exit 2
      const { loadGatewayConfig, startGateway } = await import('../gateway/index.js');
      const config = loadGatewayConfig(options.config);
      const metrics = new Metrics({ defaultMetrics: true });
      const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      const gateway = await startGateway(config, { logger, metrics });
      const signal = await stopSignal;
      logger.info({ signal, drainTimeoutMs: config.drainTimeoutMs }, 'shutting down');
      const force = () => process.exit(1);
      process.once('SIGTERM', force);
      process.once('SIGINT', force);
      await gateway.close(config.drainTimeoutMs);
      process.exit(0);
    });
}
