// A CA directory as a Kubernetes Secret mounts it: only root.crt, intermediate.crt, intermediate.key and
// bundle.pem, files 0444 in a 0555 directory (no root key, no join-token store: a stateless replica).
import { chmodSync, copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export function readOnlyCopy(caDir: string, target: string): string {
  mkdirSync(target, { recursive: true });
  for (const file of ['root.crt', 'intermediate.crt', 'intermediate.key', 'bundle.pem']) {
    copyFileSync(join(caDir, file), join(target, file));
    chmodSync(join(target, file), 0o444);
  }
  chmodSync(target, 0o555);
  return target;
}
