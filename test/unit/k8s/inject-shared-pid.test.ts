// A pod whose containers share one PID namespace (`shareProcessNamespace: true`, or the node's with `hostPID: true`)
// lets every container see the sidecar's process, and one running as the sidecar's uid (65532, also distroless's
// default user), as root or with SETUID (it can switch to 65532), privileged, or allowed to ptrace can read its
// memory: the SVID's key and the token. The injection still injects such a pod and warns, per container, naming why;
// a pod that shares no PID namespace, or whose containers cannot reach the sidecar's uid, gets no warning.
import { describe, expect, it } from 'vitest';
import { injectObject, resolveInjectConfig } from '../../../src/k8s/index.js';

const CONFIG = resolveInjectConfig({ trustDomain: 'example.org' });
type Json = Record<string, unknown>;

function pod(spec: Json): Json {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec };
}

const warned = (spec: Json) =>
  injectObject(pod(spec), CONFIG).warnings.filter((warning) => warning.includes("the sidecar's memory"));
const readsMemory = (container: string, why: string) =>
  `Pod p: container ${container} ${why}: it can read the sidecar's memory (SVID key, token) in the shared PID namespace`;
const SHARED = { shareProcessNamespace: true };

describe('a pod sharing its PID namespace', () => {
  it('fail/a container as the sidecar’s uid, by its own or the pod’s securityContext, is named', () => {
    expect(
      warned({
        ...SHARED,
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

  it('fail/a container without any runAsUser (its image decides) is named', () => {
    expect(warned({ ...SHARED, containers: [{ name: 'app', image: 'a:1' }] })).toEqual([
      readsMemory('app', 'sets no runAsUser (its image may run as uid 65532 or root)'),
    ]);
  });

  it.each([
    [{ privileged: true, runAsUser: 1000 }, 'is privileged'],
    [{ runAsUser: 1000, capabilities: { add: ['SYS_PTRACE'] } }, 'adds SYS_PTRACE'],
    [{ runAsUser: 1000, capabilities: { add: ['CAP_SYS_PTRACE'] } }, 'adds SYS_PTRACE'],
    [{ runAsUser: 1000, capabilities: { add: ['sys_ptrace'] } }, 'adds SYS_PTRACE'],
    [{ runAsUser: 1000, capabilities: { add: ['ALL'] } }, 'adds ALL capabilities'],
    [{ runAsUser: 1000, capabilities: { add: ['SETUID'] } }, 'adds SETUID (may switch to uid 65532)'],
    [{ runAsUser: 0 }, 'runs as root (may switch to uid 65532)'],
    [{ runAsUser: 0, capabilities: { drop: ['NET_RAW'] } }, 'runs as root (may switch to uid 65532)'],
  ])('fail/a container that can reach the sidecar’s uid or ptrace it (%j) is named', (securityContext, why) => {
    expect(warned({ ...SHARED, containers: [{ name: 'app', image: 'a:1', securityContext }] })).toEqual([
      readsMemory('app', why),
    ]);
  });

  it('fail/hostPID: the node’s PID namespace is named once, and its containers as in a shared one', () => {
    expect(
      warned({ hostPID: true, containers: [{ name: 'app', image: 'a:1', securityContext: { runAsUser: 65532 } }] }),
    ).toEqual([
      "Pod p: hostPID: containers of other hostPID pods running as uid 65532 or root can read the sidecar's memory (SVID key, token)",
      readsMemory('app', "runs as uid 65532, the sidecar's"),
    ]);
  });

  it('ok/containers of other uids, root without SETUID, or a pod that shares no PID namespace get no warning', () => {
    expect(
      warned({
        ...SHARED,
        securityContext: { runAsUser: 1000 },
        containers: [
          { name: 'app', image: 'a:1' },
          { name: 'b', image: 'b:1', securityContext: { runAsUser: 0, capabilities: { drop: ['ALL'] } } },
          { name: 'c', image: 'c:1', securityContext: { runAsUser: 0, capabilities: { drop: ['setuid'] } } },
        ],
      }),
    ).toEqual([]);
    expect(warned({ containers: [{ name: 'app', image: 'a:1', securityContext: { runAsUser: 65532 } }] })).toEqual([]);
    expect(warned({ shareProcessNamespace: false, containers: [{ name: 'app', image: 'a:1' }] })).toEqual([]);
  });
});
