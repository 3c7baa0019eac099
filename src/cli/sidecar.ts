// `meshauth sidecar --config FILE`: load and validate the config (bad config → exit 2 naming file and
// key), start the sidecar, and on SIGTERM/SIGINT drain in-flight requests (bounded by drainTimeout), exit 0.
// A second signal during the drain forces exit 1.
import type { Command } from 'commander';
import { loadSidecarConfig, unknownMeshauthVariables } from '../config/index.js';
import { startSidecar } from '../sidecar/index.js';
import { createLogger, Metrics } from '../telemetry/index.js';

export function registerSidecarCommand(program: Command): void {
  program
    .command('sidecar')
    .description('run the sidecar: inbound mTLS policy enforcement point, outbound mTLS proxy, admin endpoints')
    .option('-c, --config <file>', 'sidecar config (YAML, keys in the README); MESHAUTH_* variables override them')
    .option('--log-level <level>', 'log level (trace, debug, info, warn, error, fatal, silent)', 'info')
    .action(async (options: { config?: string; logLevel: string }) => {
      const logger = createLogger({ name: 'sidecar', level: options.logLevel });
      for (const { name, meant } of unknownMeshauthVariables(process.env)) {
        logger.warn(
          { event: 'config_env_unknown', variable: name, ...(meant === undefined ? {} : { meant }) },
          `${name} is not a meshauth setting and is ignored${meant === undefined ? '' : ` (did you mean ${meant}?)`}`,
        );
      }
      const config = loadSidecarConfig(options.config, process.env);
      const metrics = new Metrics({ defaultMetrics: true });
      // Handlers before the listeners: a SIGTERM during start-up still drains and exits 0.
      const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      const sidecar = await startSidecar(config, { logger, metrics });
      const signal = await stopSignal;
      logger.info({ signal, drainTimeoutMs: config.drainTimeoutMs }, 'shutting down');
      const force = () => {
        logger.warn('second signal: exiting without finishing the drain');
        process.exit(1);
      };
      process.once('SIGTERM', force);
      process.once('SIGINT', force);
      await sidecar.close(config.drainTimeoutMs);
      process.exit(0);
    });
}
