export { type CountCell, CountTally } from './count-tally.js';
export { DurationHistogram, DurationSeries } from './duration-histogram.js';
export { LogWindows } from './log-windows.js';
export { createLogger, type Logger, type LoggerOptions, silentLogger } from './logger.js';
export { EXPOSITION_INTERVAL_MS, Metrics, type MetricsOptions } from './metrics.js';
export { DEFAULT_MAX_PEER_ID_LABELS, PEER_ID_OVERFLOW, PeerIdLabels } from './peer-id-labels.js';
export { RateLimitedLog } from './rate-limited-log.js';
export { RefusalLog } from './refusal-log.js';
export { statusLabel } from './status-label.js';
