export { createLogger, type Logger, type LoggerOptions, silentLogger } from './logger.js';
export { Metrics, type MetricsOptions } from './metrics.js';
export { RateLimitedLog } from './rate-limited-log.js';
export { RefusalLog } from './refusal-log.js';
