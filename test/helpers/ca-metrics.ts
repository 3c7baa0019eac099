// What a CA's Metrics registry counted, read in-process: the tests of each refusal check its own counter.
import type { Metrics } from '../../src/telemetry/index.js';

/** `meshauth_ca_requests_rejected_total{reason}` (0 before the first one). */
export async function caRejections(metrics: Metrics, reason: string): Promise<number> {
  const { values } = await metrics.caRequestsRejected.get();
  return values.find((v) => v.labels.reason === reason)?.value ?? 0;
}
