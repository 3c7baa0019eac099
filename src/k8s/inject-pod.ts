// Injection into one pod template (a Pod's metadata+spec, or a workload's spec.template) and its exact undo.
// Pure: works on a JSON object in place; callers pass a clone. What injection adds is recorded in the status
// annotation, so uninject removes exactly that and nothing the user wrote.
import { MeshauthError } from '../errors/index.js';
import { type InjectConfig, LOG_LEVELS, type LogLevel } from './inject-config.js';
import {
  arrayAt,
  ensureArray,
  ensureObject,
  isObject,
  type JsonObject,
  named,
  objectAt,
  stringAt,
} from './inject-json.js';
import {
  ANNOTATION_APP_PORT,
  ANNOTATION_END_USER,
  ANNOTATION_INJECT,
  ANNOTATION_LOG_LEVEL,
  ANNOTATION_ORIGINAL_PROBES,
  ANNOTATION_POLICY,
  ANNOTATION_PROXY_CPU,
  ANNOTATION_PROXY_MEMORY,
  ANNOTATION_STATUS,
  APP_ENV_NAMES,
  END_USER_KEY,
  INJECTED_VOLUMES,
  POLICY_KEY,
  PORT_ADMIN,
  PORT_ADMIN_NAME,
  PORT_INBOUND_NAME,
  PORT_OUTBOUND,
  PROBE_KINDS,
  PROMETHEUS_ANNOTATIONS,
  type ProbeField,
  SIDECAR_NAME,
  SIDECAR_PORTS,
} from './inject-names.js';
import { checkQuantity } from './inject-quantity.js';
import { sharedPidNamespaceWarnings } from './inject-shared-pid.js';
import { type AppProbes, type SidecarSettings, sidecarContainer, sidecarVolumes } from './inject-sidecar.js';

/** The status annotation: what injection created, so uninject can remove exactly that. */
interface InjectStatus {
  readonly version: 1;
  /** Env variable names added, per app container. */
  readonly env: Record<string, string[]>;
  /** Pod annotations added (the Prometheus ones, when the pod had none of its own). */
  readonly annotations: string[];
  /** Collections that did not exist before: `annotations`, `initContainers`, `volumes`, `env:<container>`. */
  readonly created: string[];
}

type OriginalProbes = Record<string, Partial<Record<ProbeField, unknown>>>;

export type TemplateOutcome =
  | { readonly kind: 'injected'; readonly warnings: readonly string[] }
  | {
      readonly kind: 'skipped';
      readonly reason: 'opted-out' | 'host-network' | 'windows';
      readonly warnings: readonly string[];
    };

const PROBE_FIELDS = Object.keys(PROBE_KINDS) as ProbeField[];
/** The sidecar's named container ports (the Service's mesh port and the monitoring scrape select them by name). */
const SIDECAR_PORT_NAMES: readonly string[] = [PORT_INBOUND_NAME, PORT_ADMIN_NAME];
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const LOOPBACK_NO_PROXY = ['127.0.0.1', 'localhost', '::1'];
/** The proxy variables a container may set itself (upper case; either spelling counts). */
const PROXY_ENV_NAMES = ['HTTP_PROXY', 'NO_PROXY'];
// The node-local metadata servers cloud SDKs call over plain HTTP (credentials, GKE Workload Identity, EKS Pod
// Identity): never mesh services, and through the proxy they would be refused, breaking every cloud client.
const METADATA_NO_PROXY = ['169.254.169.254', '169.254.170.23', 'metadata.google.internal'];

/** True when `meshauth.dev/inject` says "false" in these metadata annotations. */
export function optedOut(metadata: JsonObject | undefined): boolean {
  const value = objectAt(metadata ?? {}, 'annotations')?.[ANNOTATION_INJECT];
  return value === 'false' || value === false;
}

/** Values of `meshauth.dev/inject` that mean "inject" without a word: the namespace label's and the obvious one. */
const INJECT_VALUES: readonly unknown[] = ['true', true, 'enabled'];

/**
 * Why these metadata look like an opt-out that is not one, or undefined: a `meshauth.dev/inject` annotation with
 * another spelling of false ("False", " false", "no", "disabled"...), or the opt-out written as a label (the key the
 * namespace's opt-in uses). Such a workload is injected like any other; the warning says why.
 */
function ignoredOptOut(metadata: JsonObject | undefined): string | undefined {
  const annotation = objectAt(metadata ?? {}, 'annotations')?.[ANNOTATION_INJECT];
  if (annotation !== undefined && !optedOut(metadata) && !INJECT_VALUES.includes(annotation)) {
    return `annotation ${ANNOTATION_INJECT}: ${JSON.stringify(annotation)} is not "false", which alone opts out; injected`;
  }
  const label = objectAt(metadata ?? {}, 'labels')?.[ANNOTATION_INJECT];
  if (annotation === undefined && label !== undefined && !INJECT_VALUES.includes(label)) {
    return `${ANNOTATION_INJECT} is a label here; the opt-out is the annotation ${ANNOTATION_INJECT}: "false"; injected`;
  }
  return undefined;
}

/**
 * True when the template carries the status annotation: injection always writes it beside the sidecar. An init
 * container merely named like the sidecar is the user's own; taking it for ours would replace it without a word
 * (and uninject would delete it), so without the annotation it is a conflict that injection refuses.
 */
export function isInjected(template: JsonObject): boolean {
  const annotations = objectAt(objectAt(template, 'metadata') ?? {}, 'annotations');
  return annotations !== undefined && ANNOTATION_STATUS in annotations;
}

/**
 * Injects the sidecar into `template` (mutated). An already injected template is first uninjected, so injecting
 * twice gives the same object and a changed config replaces the old sidecar. `where` names the object in messages.
 */
export function injectTemplate(template: JsonObject, config: InjectConfig, where: string): TemplateOutcome {
  const warnings: string[] = [];
  const metadataBefore = objectAt(template, 'metadata');
  if (optedOut(metadataBefore)) return { kind: 'skipped', reason: 'opted-out', warnings };
  const spec = objectAt(template, 'spec');
  if (spec === undefined) throw invalid(where, 'spec', 'a pod template without spec cannot be injected');
  if (spec.hostNetwork === true) {
    warnings.push(`${where}: hostNetwork pod left without a sidecar (its ports would be the node's)`);
    return { kind: 'skipped', reason: 'host-network', warnings };
  }
  // The sidecar is a Linux image with a Linux security context: the API server refuses runAsUser, capabilities and
  // seccomp on a pod whose spec.os is windows (no pod of the workload could be created), and a Linux image does
  // not run on a Windows node.
  if (isWindows(spec)) {
    warnings.push(`${where}: Windows pod left without a sidecar (the sidecar runs on Linux only)`);
    return { kind: 'skipped', reason: 'windows', warnings };
  }
  const misspelled = ignoredOptOut(metadataBefore);
  if (misspelled !== undefined) warnings.push(`${where}: ${misspelled}`);
  uninjectTemplate(template);

  const status: InjectStatus = { version: 1, env: {}, annotations: [], created: [] };
  const created = (what: string) => () => status.created.push(what);
  const metadata = ensureObject(template, 'metadata', created('metadata'));
  const annotations = objectAt(metadata, 'annotations') ?? {};
  const containers = named(arrayAt(spec, 'containers'));
  checkConflicts(spec, containers, where, warnings);
  warnings.push(...sharedPidNamespaceWarnings(spec, where));

  const appProbes: AppProbes = {};
  const originalProbes: OriginalProbes = {};
  for (const container of containers) {
    rewriteProbes(container, appProbes, originalProbes, where, warnings);
  }
  const settings: SidecarSettings = {
    config,
    appPort: appPortOf(annotations, containers, where),
    policyConfigMap: configMapOf(annotations, ANNOTATION_POLICY, POLICY_KEY, where),
    endUserConfigMap: configMapOf(annotations, ANNOTATION_END_USER, END_USER_KEY, where),
    logLevel: logLevelOf(annotations, config, where),
    cpu: quantityOf(annotations, ANNOTATION_PROXY_CPU, config.proxy.cpu, where),
    memory: quantityOf(annotations, ANNOTATION_PROXY_MEMORY, config.proxy.memory, where),
    appProbes,
  };

  ensureArray(spec, 'initContainers', created('initContainers')).unshift(sidecarContainer(settings));
  ensureArray(spec, 'volumes', created('volumes')).push(...sidecarVolumes(settings));
  const noProxy = [...LOOPBACK_NO_PROXY, ...METADATA_NO_PROXY, ...config.noProxy].join(',');
  const proxyEnv: Record<string, string> = {
    HTTP_PROXY: `http://127.0.0.1:${PORT_OUTBOUND}`,
    http_proxy: `http://127.0.0.1:${PORT_OUTBOUND}`,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    NODE_USE_ENV_PROXY: '1',
  };
  // The app's own init containers too: they run after the sidecar is up (it is the first one) and may call the mesh.
  for (const container of [...appInitContainers(spec), ...containers]) {
    const name = container.name as string;
    const env = ensureArray(container, 'env', created(`env:${name}`));
    const present = new Set(named(env).map((e) => (e.name as string).toUpperCase()));
    // The proxy variables go together: a container that sets HTTP_PROXY or NO_PROXY (either spelling) keeps its own
    // and gets none of ours. Clients differ in which spelling they read, two values would be worse than none, and
    // our HTTP_PROXY beside its own NO_PROXY would send localhost and the cloud metadata server to the sidecar.
    const own = PROXY_ENV_NAMES.filter((n) => present.has(n));
    const added = own.length > 0 ? [] : APP_ENV_NAMES.filter((n) => !present.has(n.toUpperCase()));
    if (own.length > 0) {
      warnings.push(
        `${where}: container ${name} sets ${own.join(', ')} itself; no proxy variables added (its plain-HTTP calls do not go through the sidecar)`,
      );
    } else if ((arrayAt(container, 'envFrom')?.length ?? 0) > 0) {
      // Variables from envFrom (a ConfigMap or Secret, the usual way to share a corporate proxy) are not in the pod:
      // the webhook cannot read them, and Kubernetes lets env win over envFrom, so ours would replace them unseen.
      warnings.push(
        `${where}: container ${name} has envFrom; the proxy variables added (${added.join(', ')}) replace any of the same name it sets (env wins over envFrom): to keep its own proxy, set HTTP_PROXY or NO_PROXY in env`,
      );
    }
    for (const n of added) env.push({ name: n, value: proxyEnv[n] });
    if (added.length > 0) status.env[name] = added;
  }

  const out = ensureObject(metadata, 'annotations', created('annotations'));
  // A pod that already tells Prometheus where its own metrics are keeps that; the sidecar's are then not scraped.
  if (!Object.keys(PROMETHEUS_ANNOTATIONS).some((k) => k in out)) {
    for (const [key, value] of Object.entries(PROMETHEUS_ANNOTATIONS)) {
      out[key] = value;
      status.annotations.push(key);
    }
  } else {
    warnings.push(
      `${where}: pod has its own prometheus.io annotations, kept as they are; the sidecar's metrics (port meshauth-admin, /metrics) are scraped by deploy/prometheus's job only while prometheus.io/scrape is "true" (deploy/monitoring's PodMonitor scrapes them always)`,
    );
  }
  if (Object.keys(originalProbes).length > 0) out[ANNOTATION_ORIGINAL_PROBES] = JSON.stringify(originalProbes);
  out[ANNOTATION_STATUS] = JSON.stringify(status);
  return { kind: 'injected', warnings };
}

/** Removes what injectTemplate added (mutates); a template without a sidecar is left as it is. */
export function uninjectTemplate(template: JsonObject): boolean {
  if (!isInjected(template)) return false;
  const metadata = objectAt(template, 'metadata') ?? {};
  const annotations = objectAt(metadata, 'annotations') ?? {};
  const status = parseStatus(annotations[ANNOTATION_STATUS]);
  const originals = parseOriginalProbes(annotations[ANNOTATION_ORIGINAL_PROBES]);
  // Sets: the annotation is the pod creator's input (a review arrives before the API server's size checks), and a
  // list lookup per container and per env entry made a 1 MB pod cost the webhook tens of seconds.
  const created = new Set(status.created);
  const wasCreated = (what: string) => created.has(what);
  const spec = objectAt(template, 'spec') ?? {};

  removeNamed(spec, 'initContainers', (name) => name === SIDECAR_NAME, wasCreated('initContainers'));
  removeNamed(spec, 'volumes', (name) => INJECTED_VOLUMES.includes(name), wasCreated('volumes'));
  for (const container of [...appInitContainers(spec), ...named(arrayAt(spec, 'containers'))]) {
    const name = container.name as string;
    // Own entries only: a container named `constructor` would otherwise find Object.prototype's.
    const added = new Set(Object.hasOwn(status.env, name) ? status.env[name] : []);
    removeNamed(container, 'env', (n) => added.has(n), wasCreated(`env:${name}`));
    const saved = Object.hasOwn(originals, name) ? originals[name] : undefined;
    // The three probe fields only, whatever else the annotation (the pod creator's) names.
    for (const field of PROBE_FIELDS) {
      const httpGet = isObject(saved) && Object.hasOwn(saved, field) ? saved[field] : undefined;
      const probe = objectAt(container, field);
      if (probe !== undefined && isObject(httpGet)) probe.httpGet = httpGet;
    }
  }
  for (const key of [...status.annotations, ANNOTATION_STATUS, ANNOTATION_ORIGINAL_PROBES]) delete annotations[key];
  if (wasCreated('annotations') && Object.keys(annotations).length === 0) delete metadata.annotations;
  if (wasCreated('metadata') && Object.keys(metadata).length === 0) delete template.metadata;
  return true;
}

/**
 * Points an app container's plain httpGet probes at the sidecar's `/app-health/<container>/<kind>`, which
 * forwards them on loopback: the app may then listen on 127.0.0.1 only, out of reach of anything but its sidecar.
 */
function rewriteProbes(
  container: JsonObject,
  appProbes: AppProbes,
  originals: OriginalProbes,
  where: string,
  warnings: string[],
): void {
  const name = container.name as string;
  for (const [field, kind] of Object.entries(PROBE_KINDS) as [ProbeField, (typeof PROBE_KINDS)[ProbeField]][]) {
    const probe = objectAt(container, field);
    const httpGet = probe === undefined ? undefined : objectAt(probe, 'httpGet');
    if (probe === undefined || httpGet === undefined) continue;
    const scheme = stringAt(httpGet, 'scheme') ?? 'HTTP';
    if (scheme !== 'HTTP' || httpGet.host !== undefined || httpGet.httpHeaders !== undefined) {
      warnings.push(`${where}: container ${name} ${field} uses scheme HTTPS, host or httpHeaders; not rewritten`);
      continue;
    }
    const port = resolvePort(httpGet.port, container);
    if (port === undefined) {
      warnings.push(`${where}: container ${name} ${field} port ${String(httpGet.port)} not found; not rewritten`);
      continue;
    }
    const path = stringAt(httpGet, 'path') ?? '/';
    if (!path.startsWith('/')) {
      warnings.push(`${where}: container ${name} ${field} path does not start with /; not rewritten`);
      continue;
    }
    originals[name] = { ...originals[name], [field]: structuredClone(httpGet) };
    appProbes[name] = { ...appProbes[name], [kind]: { port, path } };
    httpGet.path = `/app-health/${name}/${kind}`;
    // A number, not the name: the kubelet looks a named probe port up in the probed container's own ports only.
    httpGet.port = PORT_ADMIN;
  }
}

/** A pod that says it runs on Windows: spec.os, or the well-known node label in its nodeSelector. */
function isWindows(spec: JsonObject): boolean {
  return (
    stringAt(objectAt(spec, 'os'), 'name') === 'windows' ||
    stringAt(objectAt(spec, 'nodeSelector'), 'kubernetes.io/os') === 'windows'
  );
}

/** The pod's init containers other than the sidecar. */
function appInitContainers(spec: JsonObject): JsonObject[] {
  return named(arrayAt(spec, 'initContainers')).filter((c) => c.name !== SIDECAR_NAME);
}

function resolvePort(port: unknown, container: JsonObject): number | undefined {
  if (typeof port === 'number' && Number.isInteger(port) && port > 0 && port < 65536) return port;
  if (typeof port === 'string' && /^\d+$/.test(port)) return resolvePort(Number(port), container);
  if (typeof port !== 'string') return undefined;
  const match = arrayAt(container, 'ports')?.find((p) => isObject(p) && p.name === port);
  return isObject(match) && typeof match.containerPort === 'number' ? match.containerPort : undefined;
}

function appPortOf(annotations: JsonObject, containers: readonly JsonObject[], where: string): number | undefined {
  const text = annotations[ANNOTATION_APP_PORT];
  if (text !== undefined) {
    const port = typeof text === 'string' && /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
    if (!(port >= 1 && port <= 65535)) throw invalid(where, ANNOTATION_APP_PORT, 'expected a port number 1-65535');
    // The sidecar's own ports: it would forward every inbound request to itself.
    if (SIDECAR_PORTS.includes(port)) {
      throw invalid(
        where,
        ANNOTATION_APP_PORT,
        `expected the app's port, not one of the sidecar's (${SIDECAR_PORTS.join(', ')})`,
      );
    }
    return port;
  }
  // A port the sidecar binds is never the app's: the sidecar would forward inbound requests to itself (the same
  // value in the annotation is refused above; checkConflicts warns about the container).
  for (const container of containers) {
    for (const port of arrayAt(container, 'ports') ?? []) {
      if (!isObject(port) || typeof port.containerPort !== 'number') continue;
      if (SIDECAR_PORTS.includes(port.containerPort)) continue;
      if (port.protocol === undefined || port.protocol === 'TCP') return port.containerPort;
    }
  }
  return undefined;
}

/** A ConfigMap named by an annotation (validated as a name; the key it must hold is named in the message). */
function configMapOf(annotations: JsonObject, annotation: string, key: string, where: string): string | undefined {
  const value = annotations[annotation];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !DNS_SUBDOMAIN.test(value)) {
    throw invalid(where, annotation, `expected the name of a ConfigMap (with key ${key})`);
  }
  return value;
}

function logLevelOf(annotations: JsonObject, config: InjectConfig, where: string): LogLevel {
  const value = annotations[ANNOTATION_LOG_LEVEL];
  if (value === undefined) return config.logLevel;
  const level = LOG_LEVELS.find((l) => l === value);
  if (level === undefined) throw invalid(where, ANNOTATION_LOG_LEVEL, `expected one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

function quantityOf(annotations: JsonObject, key: string, fallback: string, where: string): string {
  const value = annotations[key];
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw invalid(where, key, 'expected a Kubernetes quantity such as 100m or 128Mi');
  // A value the cluster cannot hold is refused like one that is no quantity: the API server would refuse the whole
  // pod, or keep a value (1e18 cores) that its kubelet and scheduler read as another.
  const checked = checkQuantity(value);
  if (!checked.ok) throw invalid(where, key, checked.expected);
  return value;
}

function checkConflicts(spec: JsonObject, containers: readonly JsonObject[], where: string, warnings: string[]): void {
  for (const list of ['containers', 'initContainers']) {
    if (named(arrayAt(spec, list)).some((c) => c.name === SIDECAR_NAME)) {
      throw invalid(where, list, `a container is already named ${SIDECAR_NAME}`);
    }
  }
  if (named(arrayAt(spec, 'volumes')).some((v) => INJECTED_VOLUMES.includes(v.name as string))) {
    throw invalid(where, 'volumes', `volume names ${INJECTED_VOLUMES.join(', ')} are reserved for the sidecar`);
  }
  // A Service's targetPort meshauth-in (and a PodMonitor's meshauth-admin) resolves to the first container port of
  // that name, app containers before init containers: the app's port would take the mesh traffic meant for the
  // sidecar.
  for (const list of ['containers', 'initContainers']) {
    for (const container of named(arrayAt(spec, list))) {
      const taken = (arrayAt(container, 'ports') ?? []).find(
        (port) => isObject(port) && SIDECAR_PORT_NAMES.includes(port.name as string),
      );
      if (taken !== undefined) {
        throw invalid(
          where,
          list,
          `container ${String(container.name)}: port names ${SIDECAR_PORT_NAMES.join(', ')} are reserved for the sidecar`,
        );
      }
    }
  }
  // The app's init containers too: they run beside the sidecar (a native sidecar for the pod's lifetime), in the same
  // network namespace, and one of the two could not bind the port.
  for (const container of [...appInitContainers(spec), ...containers]) {
    for (const port of arrayAt(container, 'ports') ?? []) {
      if (isObject(port) && SIDECAR_PORTS.includes(port.containerPort as number)) {
        warnings.push(
          `${where}: container ${String(container.name)} uses port ${String(port.containerPort)}, which the sidecar binds`,
        );
      }
    }
  }
}

function removeNamed(parent: JsonObject, key: string, match: (name: string) => boolean, created: boolean): void {
  const list = arrayAt(parent, key);
  if (list === undefined) return;
  const kept = list.filter((item) => !(isObject(item) && typeof item.name === 'string' && match(item.name)));
  if (kept.length === 0 && created) delete parent[key];
  else if (kept.length !== list.length) parent[key] = kept;
}

function parseStatus(value: unknown): InjectStatus {
  const empty: InjectStatus = { version: 1, env: {}, annotations: [], created: [] };
  if (typeof value !== 'string') return empty;
  try {
    const parsed: unknown = JSON.parse(value);
    if (!isObject(parsed)) return empty;
    const strings = (v: unknown) => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);
    const env: Record<string, string[]> = {};
    for (const [k, v] of Object.entries(isObject(parsed.env) ? parsed.env : {})) env[k] = strings(v);
    return { version: 1, env, annotations: strings(parsed.annotations), created: strings(parsed.created) };
  } catch {
    return empty;
  }
}

function parseOriginalProbes(value: unknown): OriginalProbes {
  if (typeof value !== 'string') return {};
  try {
    const parsed: unknown = JSON.parse(value);
    return isObject(parsed) ? (parsed as OriginalProbes) : {};
  } catch {
    return {};
  }
}

function invalid(where: string, key: string, expected: string): MeshauthError {
  return new MeshauthError('MESHAUTH_ERR_MANIFEST_INVALID', `${where}: ${key}: ${expected}`, {
    reason: 'inject_invalid',
  });
}
