// Leaf signing on more than one core (`ca serve --workers N`): a fixed pool of worker_threads, each holding the
// intermediate key it loaded once from the CA directory. The main thread keeps authentication, CSR checks and TLS;
// a worker only turns (SPIFFE ID, public key, lifetime) into a signed certificate. A rotation reaches the workers
// through the authority's generation number: a job tagged with a newer generation makes its worker reload first,
// and the answer names the intermediate that signed, so material from before a rotation is never passed off as new.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { x509 } from '../pki/index.js';
import { workerScriptUrl } from '../platform/worker-script.js';
import { type CaAuthority, type IssuedSvid, type IssueRequest, issuedSvid } from './authority.js';

export interface SignJob {
  readonly seq: number;
  readonly generation: number;
  readonly id: string;
  readonly spki: Uint8Array;
  readonly ttlMs: number;
  readonly nowMs: number;
}

export type SignResult =
  | {
      readonly seq: number;
      readonly der: Uint8Array;
      readonly serialNumber: string;
      readonly notAfterMs: number;
      readonly issuerSerial: string;
      readonly error?: undefined;
    }
  | { readonly seq: number; readonly error: string };

/** Default pool size: one worker per core the process may use. */
export function defaultWorkerCount(): number {
  return availableParallelism();
}

interface Pending {
  readonly resolve: (result: SignResult) => void;
}

interface PooledWorker {
  readonly worker: Worker;
  readonly pending: Map<number, Pending>;
}

export class SigningPool {
  readonly #authority: CaAuthority;
  readonly #workers: PooledWorker[] = [];
  #seq = 0;
  #next = 0;
  #closed = false;

  private constructor(authority: CaAuthority) {
    this.#authority = authority;
  }

  /** `size` 0 means no pool (the caller signs in its own thread). */
  static start(dir: string, authority: CaAuthority, size: number): SigningPool {
    const pool = new SigningPool(authority);
    for (let i = 0; i < size; i += 1) pool.#workers.push(pool.#spawn(dir));
    return pool;
  }

  get size(): number {
    return this.#workers.length;
  }

  #spawn(dir: string): PooledWorker {
    const worker = new Worker(workerScriptUrl('./signing-worker.js', import.meta.url), { workerData: { dir } });
    const pooled: PooledWorker = { worker, pending: new Map() };
    worker.on('message', (result: SignResult) => {
      const pending = pooled.pending.get(result.seq);
      pooled.pending.delete(result.seq);
      if (pooled.pending.size === 0) worker.unref();
      pending?.resolve(result);
    });
    const failAll = (message: string) => {
      for (const [seq, pending] of pooled.pending) pending.resolve({ seq, error: message });
      pooled.pending.clear();
    };
    worker.on('error', (error) => failAll(`signing worker failed: ${error.message}`));
    worker.on('exit', (code) => {
      failAll(`signing worker exited (${code})`);
      // A crashed worker is replaced so the pool keeps its size; a closing pool lets it go.
      if (!this.#closed) {
        const index = this.#workers.indexOf(pooled);
        if (index !== -1) this.#workers[index] = this.#spawn(dir);
      }
    });
    worker.unref();
    return pooled;
  }

  /** Signs like CaAuthority.issue (same checks first, in this thread), the signature on a worker. */
  async issue(request: IssueRequest): Promise<IssuedSvid> {
    if (this.#workers.length === 0 || request.dnsNames !== undefined || request.ipAddresses !== undefined) {
      return this.#authority.issue(request);
    }
    const material = this.#authority.material;
    if (!request.id.memberOf(material.trustDomain) || request.id.isTrustDomainId) {
      // CaAuthority.issue refuses it with the registry error: let it say so.
      return this.#authority.issue(request);
    }
    const spki =
      request.publicKey instanceof Uint8Array
        ? request.publicKey
        : new Uint8Array(
            (request.publicKey instanceof x509.PublicKey
              ? request.publicKey
              : await x509.PublicKey.create(request.publicKey)
            ).rawData,
          );
    // Least-loaded worker, ties broken round-robin.
    let chosen = this.#workers[this.#next % this.#workers.length] as PooledWorker;
    this.#next += 1;
    for (const candidate of this.#workers) if (candidate.pending.size < chosen.pending.size) chosen = candidate;
    this.#seq += 1;
    const job: SignJob = {
      seq: this.#seq,
      generation: this.#authority.generation,
      id: request.id.toString(),
      spki,
      ttlMs: request.ttlMs,
      nowMs: request.now.getTime(),
    };
    const result = await new Promise<SignResult>((resolve) => {
      // An idle worker never keeps the process alive; one with a job in flight does.
      if (chosen.pending.size === 0) chosen.worker.ref();
      chosen.pending.set(job.seq, { resolve });
      chosen.worker.postMessage(job);
    });
    if (result.error !== undefined || result.issuerSerial !== material.issuer.certificate.serialNumber) {
      // The worker could not sign (its read of the CA files caught a rotation half-way, or it crashed) or its
      // files and ours disagree: sign here, with the material this thread validated, rather than fail or serve a
      // mismatched chain. A rotation never costs a request.
      return this.#authority.issue(request);
    }
    return issuedSvid(result.der, result.serialNumber, new Date(result.notAfterMs), material);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#workers.map((w) => w.worker.terminate()));
    this.#workers.length = 0;
  }
}
