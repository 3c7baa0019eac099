// A pod with `shareProcessNamespace: true` lets every container see the sidecar's process, and one running as the
// sidecar's uid (65532, also distroless's default user), privileged or allowed to ptrace can read its memory: the
// SVID's key and the token. The injection still injects such a pod and warns, per container, naming why; a pod that
// shares no PID namespace, or whose containers run as another uid without ptrace, gets no warning.
import { describe, expect, it } from 'vitest';
import { injectObject, resolveInjectConfig } from '../../../src/k8s/index.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });
type Json = Record<string, unknown>;

function pod(spec: Json): Json {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec };
}

const warned = (spec: Json) =>
  injectObject(pod(spec), CONFIG).warnings.filter((warning) => warning.includes('shareProcessNamespace'));
const readsMemory = (container: string, why: string) =>
  `Pod p: shareProcessNamespace: container ${container} ${why}, so it can read the sidecar's memory (SVID key, token)`;

describe('a pod sharing its PID namespace', () => {
  it('fail/a container as the sidecar’s uid, by its own or the pod’s securityContext, is named', () => {
    expect(
      warned({
        shareProcessNamespace: true,
        securityContext: { runAsUser: 65532 },
        containers: [
          { name: 'app', image: 'a:1' },
          { name: 'other', image: 'b:1', securityContext: { runAsUser: 1000 } },
        ],
        initContainers: [{ name: 'setup', image: 'c:1', securityContext: { runAsUser: 65532 } }],
      }),
    ).toEqual([
      readsMemory('setup', "runs as uid 65532, the sidecar's"),
      readsMemory('app', "runs as uid 65532, the sidecar's"),
    ]);
  });

  it('fail/a container without any runAsUser may run as 65532 (its image decides): named', () => {
    expect(warned({ shareProcessNamespace: true, containers: [{ name: 'app', image: 'a:1' }] })).toEqual([
      readsMemory('app', "sets no runAsUser (its image may run as uid 65532, the sidecar's)"),
    ]);
  });

  it.each([
    [{ privileged: true, runAsUser: 1000 }, 'is privileged'],
    [{ runAsUser: 1000, capabilities: { add: ['SYS_PTRACE'] } }, 'adds SYS_PTRACE'],
    [{ runAsUser: 1000, capabilities: { add: ['CAP_SYS_PTRACE'] } }, 'adds SYS_PTRACE'],
    [{ runAsUser: 1000, capabilities: { add: ['ALL'] } }, 'adds SYS_PTRACE'],
  ])('fail/a container that may ptrace another uid (%j) is named', (securityContext, why) => {
    expect(
      warned({ shareProcessNamespace: true, containers: [{ name: 'app', image: 'a:1', securityContext }] }),
    ).toEqual([readsMemory('app', why)]);
  });

  it('ok/containers of other uids without ptrace, or a pod that shares no PID namespace, get no warning', () => {
    expect(
      warned({
        shareProcessNamespace: true,
        securityContext: { runAsUser: 1000 },
        containers: [
          { name: 'app', image: 'a:1' },
          { name: 'b', image: 'b:1', securityContext: { runAsUser: 0 } },
        ],
      }),
    ).toEqual([]);
    expect(warned({ containers: [{ name: 'app', image: 'a:1', securityContext: { runAsUser: 65532 } }] })).toEqual([]);
    expect(warned({ shareProcessNamespace: false, containers: [{ name: 'app', image: 'a:1' }] })).toEqual([]);
  });
});
