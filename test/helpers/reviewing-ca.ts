// A CA server on 127.0.0.1 that checks service-account tokens by TokenReview at a fake Kubernetes API server, and
// issues `burst` SVIDs per identity, then practically none: a spent budget shows at once, without waiting on the
// clock. For tests of what a review costs and when it runs.
import { IdentityRateLimit } from '../../src/ca/index.js';
import { Metrics, silentLogger } from '../../src/telemetry/index.js';
import { startCaInTempDir, type TestCaServer } from './ca-dir.js';
import { type FakeApiServer, reviewingCaOptions, startFakeApiServer } from './fake-kube-apiserver.js';

export interface ReviewingCa extends TestCaServer {
  /** The API server the CA reviews tokens at: mint tokens, delete pods, count its requests. */
  readonly api: FakeApiServer;
}

/** `close()` closes the CA server, removes its directory, then closes the API server. */
export async function startReviewingCa(burst: number): Promise<ReviewingCa> {
  const api = await startFakeApiServer();
  try {
    const ca = await startCaInTempDir({
      svidTtlMs: 10 * 60_000,
      kubernetes: reviewingCaOptions(api),
      identityRateLimit: new IdentityRateLimit(burst, 0.001),
      logger: silentLogger(),
      metrics: new Metrics(),
    });
    return {
      ...ca,
      api,
      close: async () => {
        await ca.close();
        await api.close();
      },
    };
  } catch (error) {
    await api.close();
    throw error;
  }
}
