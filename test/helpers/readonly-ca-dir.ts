// A CA directory as the Secret of `ca init --k8s-secret` mounts it: root.crt, intermediate.crt, intermediate.key,
// bundle.pem and jwt.key, files 0444 in a 0555 directory (no root key, no join-token store: a stateless replica).
import { chmodSync, copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export function readOnlyCopy(caDir: string, target: string): string {
  mkdirSync(target, { recursive: true });
  for (const file of ['root.crt', 'intermediate.crt', 'intermediate.key', 'bundle.pem', 'jwt.key']) {
    copyFileSync(join(caDir, file), join(target, file));
    chmodSync(join(target, file), 0o444);
  }
  chmodSync(target, 0o555);
  return target;
}
