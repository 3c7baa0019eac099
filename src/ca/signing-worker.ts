// A signing worker of the CA (signing-pool.ts): loads the CA material once, signs leaf X509-SVIDs on its own core,
// and reloads the material when the main thread reports a new generation (a rotation it has already picked up).
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../errors/index.js';
import { SpiffeId } from '../identity/index.js';
import { issueLeafDer } from '../pki/index.js';
import type { SignJob, SignResult } from './signing-pool.js';
import { type CaMaterial, loadCaMaterial } from './store.js';

const { dir } = workerData as { dir: string };
let material: { generation: number; loaded: Promise<CaMaterial> } | undefined;

function materialFor(generation: number): Promise<CaMaterial> {
  if (material === undefined || material.generation !== generation) {
    material = { generation, loaded: loadCaMaterial(dir) };
  }
  return material.loaded;
}

async function sign(job: SignJob): Promise<SignResult> {
  try {
    const current = await materialFor(job.generation);
    const options = {
      id: SpiffeId.parse(job.id),
      publicKey: job.spki,
      issuer: current.issuer,
      now: new Date(job.nowMs),
      ttlMs: job.ttlMs,
    };
    // The serial of the intermediate that signed: the main thread checks it is the one it expects.
    const issuerSerial = current.issuer.certificate.serialNumber;
    const signed = await issueLeafDer(options);
    return {
      seq: job.seq,
      der: new Uint8Array(signed.der),
      serialNumber: signed.serialNumber,
      notAfterMs: signed.notAfter.getTime(),
      issuerSerial,
    };
  } catch (error) {
    // A failed load is not cached: the next job retries it.
    material = undefined;
    return { seq: job.seq, error: errorMessage(error) };
  }
}

parentPort?.on('message', (job: SignJob) => {
  void sign(job).then((result) => parentPort?.postMessage(result));
});
