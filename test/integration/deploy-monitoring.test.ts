// deploy/monitoring and deploy/prometheus: the alert rules pass `promtool check rules` and their unit tests
// (`promtool test rules`), every metric the rules and the dashboard query is one meshauth exports, the dashboard is
// well-formed Grafana JSON, and the scrape configuration finds the port that injection and the CA declare.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { PORT_ADMIN, PORT_ADMIN_NAME, PROMETHEUS_ANNOTATIONS } from '../../src/k8s/index.js';
import { parseDocuments, ROOT, toolOrSkip } from '../helpers/deploy-tools.js';
import { validateAll } from '../helpers/k8s-schema.js';

type Obj = Record<string, unknown>;

const PROMTOOL = toolOrSkip('promtool', ['--version']);
const MONITORING = join(ROOT, 'deploy/monitoring');

const ruleDocs = parseDocuments(readFileSync(join(MONITORING, 'prometheus-rule.yaml'), 'utf8'), 'prometheus-rule.yaml');
const rule = ruleDocs.find((d) => d.kind === 'PrometheusRule') as Obj;
const groups = (rule.spec as Obj).groups as { name: string; rules: Obj[] }[];
const dashboard = JSON.parse(readFileSync(join(MONITORING, 'grafana-dashboard.json'), 'utf8')) as {
  panels: Obj[];
  uid: string;
  templating: { list: Obj[] };
};

/** Metric names registered in src/telemetry/metrics.ts (the one registry every process uses). */
function exportedMetrics(): Set<string> {
  const source = readFileSync(join(ROOT, 'src/telemetry/metrics.ts'), 'utf8');
  return new Set([...source.matchAll(/name: '(meshauth_[a-z_]+)'/g)].map((m) => m[1] ?? ''));
}

/** meshauth_* series a PromQL expression reads, with histogram suffixes mapped to the metric name. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\bmeshauth_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));
}

const panels = dashboard.panels.filter((p) => p.type !== 'row');
const dashboardExprs = panels.flatMap((p) => (p.targets as Obj[]).map((t) => String(t.expr)));
const ruleExprs = groups.flatMap((g) => g.rules.map((r) => String(r.expr)));

describe('deploy/monitoring: alert rules', () => {
  const work = mkdtempSync(join(tmpdir(), 'meshauth-rules-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('ok/the PrometheusRule and PodMonitors pass the structural schema', () => {
    const podMonitors = parseDocuments(readFileSync(join(MONITORING, 'pod-monitor.yaml'), 'utf8'), 'pod-monitor.yaml');
    expect(validateAll([...ruleDocs, ...podMonitors])).toEqual([]);
  });

  it('ok/alerts cover SVID expiry, rotation failures, CA rejections, CA certificate expiry and the deny rate', () => {
    const alerts = Object.fromEntries(groups.flatMap((g) => g.rules.map((r) => [String(r.alert), String(r.expr)])));
    expect(alerts.MeshauthSvidExpiringSoon).toContain('meshauth_svid_expiry_timestamp_seconds > 0) - time() < 600');
    expect(alerts.MeshauthSvidRotationFailing).toBe(
      'increase(meshauth_svid_rotations_total{result!="success"}[10m]) > 0',
    );
    expect(alerts.MeshauthCaRejectionsHigh).toContain('rate(meshauth_ca_requests_rejected_total[5m])');
    expect(alerts.MeshauthCaCertificateExpiringSoon).toBe(
      'meshauth_ca_certificate_expiry_timestamp_seconds - time() < 7 * 86400',
    );
    expect(alerts.MeshauthDenyRateHigh).toContain('meshauth_authz_decisions_total{decision="deny"}');
  });

  it('ok/the docs the annotations send an operator to exist, with the section they name', () => {
    // `(docs/FILE.md)` or `(docs/FILE.md, Section)`: both branches of a `{{ if }}` template are in the raw text.
    const refs = groups.flatMap((g) =>
      g.rules.flatMap((r) =>
        Object.values((r.annotations ?? {}) as Record<string, string>).flatMap((text) =>
          [...text.matchAll(/\b(docs\/[\w.-]+\.md)(?:, ([^)]+))?\)/g)].map((m) => ({
            alert: String(r.alert),
            file: m[1] as string,
            section: m[2],
          })),
        ),
      ),
    );
    expect(refs.length).toBeGreaterThan(0);
    const missing = refs.filter(({ file, section }) => {
      let text: string;
      try {
        text = readFileSync(join(ROOT, file), 'utf8');
      } catch {
        return true;
      }
      return (
        section !== undefined &&
        !text.split('\n').some((line) => /^#+ /.test(line) && line.replace(/^#+ /, '') === section)
      );
    });
    expect(missing).toEqual([]);
  });

  it('ok/every alert fires in at least one case of prometheus-rule.tests.yaml', () => {
    const tests = parse(readFileSync(join(MONITORING, 'prometheus-rule.tests.yaml'), 'utf8')) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const firing = new Set(
      tests.tests.flatMap((t) =>
        (t.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname),
      ),
    );
    const alerts = groups.flatMap((g) => g.rules.map((r) => String(r.alert)));
    expect(alerts.filter((a) => !firing.has(a))).toEqual([]);
  });

  it.skipIf(!PROMTOOL)('ok/promtool check rules accepts spec.groups as a rules file', () => {
    const file = join(work, 'rules.yaml');
    writeFileSync(file, stringify({ groups }));
    const out = execFileSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    expect(out).toContain(`SUCCESS: ${ruleExprs.length} rules found`);
  });

  it.skipIf(!PROMTOOL)('ok/promtool test rules: the unit tests in prometheus-rule.tests.yaml pass', () => {
    writeFileSync(join(work, 'rules.yaml'), stringify({ groups }));
    copyFileSync(join(MONITORING, 'prometheus-rule.tests.yaml'), join(work, 'prometheus-rule.tests.yaml'));
    const result = spawnSync('promtool', ['test', 'rules', join(work, 'prometheus-rule.tests.yaml')], {
      encoding: 'utf8',
    });
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.status).toBe(0);
  });

  it.skipIf(!PROMTOOL)('fail/promtool check rules rejects a broken expression (the check can fail)', () => {
    const file = join(work, 'broken.yaml');
    const broken = structuredClone(groups);
    (broken[0]?.rules[0] as Obj).expr = 'rate(meshauth_requests_total[5m]';
    writeFileSync(file, stringify({ groups: broken }));
    const result = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    expect(result.status).not.toBe(0);
  });
});

describe('deploy/monitoring: metrics and dashboard', () => {
  it('ok/every metric the rules and the dashboard query is exported by meshauth', () => {
    const exported = exportedMetrics();
    const used = new Set([...ruleExprs, ...dashboardExprs].flatMap(metricsIn));
    expect(used.size).toBeGreaterThan(8);
    expect([...used].filter((m) => !exported.has(m))).toEqual([]);
  });

  it('ok/the dashboard is Grafana JSON with unique ids, a query per panel and no overlapping panels', () => {
    expect(dashboard.uid).toBe('meshauth');
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const panel of dashboard.panels) {
      const { x, y, w, h } = panel.gridPos as { x: number; y: number; w: number; h: number };
      expect(x + w, String(panel.title)).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++) {
        for (let col = x; col < x + w; col++) {
          expect(cells.has(`${row}:${col}`), `${String(panel.title)} overlaps at ${row}:${col}`).toBe(false);
          cells.add(`${row}:${col}`);
        }
      }
    }
    for (const panel of panels) {
      const targets = panel.targets as Obj[];
      expect(targets.length, String(panel.title)).toBeGreaterThan(0);
      for (const target of targets) expect(String(target.expr)).toMatch(/meshauth_/);
      // Grafana's variable syntax, not a template literal.
      expect(panel.datasource).toEqual({ type: 'prometheus', uid: ['$', '{datasource}'].join('') });
    }
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'namespace']);
  });

  it('ok/the scrape config keeps a running or pending sidecar and drops the pods of finished Jobs', () => {
    // A finished pod keeps its IP in the API after the network gave it back: kept, the next pod given that address
    // was scraped under the finished pod's name. (The Prometheus Operator drops these phases for a PodMonitor.)
    const scrape = parse(readFileSync(join(ROOT, 'deploy/prometheus/scrape-config.yaml'), 'utf8')) as {
      scrape_configs: { relabel_configs: Obj[] }[];
    };
    const rules = scrape.scrape_configs[0]?.relabel_configs ?? [];
    const target = (phase: string) => ({
      __meta_kubernetes_pod_annotation_prometheus_io_scrape: 'true',
      __meta_kubernetes_pod_container_port_name: PORT_ADMIN_NAME,
      __meta_kubernetes_pod_container_init: 'true',
      __meta_kubernetes_pod_phase: phase,
    });
    const phases = ['Pending', 'Running', 'Succeeded', 'Failed'];
    expect(phases.filter((phase) => scraped(rules, target(phase)))).toEqual(['Pending', 'Running']);
  });

  // Found in review: the job took __metrics_path__ from prometheus.io/path, which injection leaves as the app wrote it
  // (`/actuator/prometheus`): the sidecar was scraped there, a 404, and none of the pod's alerts could fire.
  it('fail/an app’s prometheus.io/path never moves the sidecar’s scrape away from /metrics', () => {
    const scrape = parse(readFileSync(join(ROOT, 'deploy/prometheus/scrape-config.yaml'), 'utf8')) as {
      scrape_configs: { metrics_path?: string; relabel_configs: Obj[] }[];
    };
    const [job] = scrape.scrape_configs;
    expect(job?.metrics_path ?? '/metrics').toBe('/metrics');
    expect((job?.relabel_configs ?? []).filter((rule) => rule.target_label === '__metrics_path__')).toEqual([]);
  });

  it('ok/the scrape config has a job for the webhook, which has no admin port: its pods on their HTTPS port', () => {
    const scrape = parse(readFileSync(join(ROOT, 'deploy/prometheus/scrape-config.yaml'), 'utf8')) as {
      scrape_configs: { job_name: string; scheme?: string; relabel_configs: Obj[] }[];
    };
    const job = scrape.scrape_configs.find((j) => j.job_name === 'meshauth-webhook');
    expect(job?.scheme).toBe('https');
    const webhook = parseDocuments(readFileSync(join(ROOT, 'deploy/base/webhook.yaml'), 'utf8'), 'webhook.yaml').find(
      (d) => d.kind === 'Deployment',
    ) as Obj;
    const template = (webhook.spec as Obj).template as Obj;
    const labels = (template.metadata as Obj).labels as Record<string, string>;
    const [container] = (template.spec as Obj).containers as Obj[];
    const ports = ((container?.ports ?? []) as Obj[]).map((p) => String(p.name));
    const target = (name: string, port: string) => ({
      __meta_kubernetes_pod_label_app_kubernetes_io_name: name,
      __meta_kubernetes_pod_container_port_name: port,
      __meta_kubernetes_pod_phase: 'Running',
    });
    const rules = job?.relabel_configs ?? [];
    expect(ports.filter((port) => scraped(rules, target(String(labels['app.kubernetes.io/name']), port)))).toEqual([
      'https',
    ]);
    expect(scraped(rules, target('meshauth-ca', 'https'))).toBe(false);
  });

  it('ok/scrape targets: the port injection and the CA declare is the one the PodMonitor and scrape config keep', () => {
    const [sidecars] = parseDocuments(readFileSync(join(MONITORING, 'pod-monitor.yaml'), 'utf8'), 'pod-monitor.yaml');
    const endpoints = (((sidecars?.spec ?? {}) as Obj).podMetricsEndpoints as Obj[]).map((e) => e.port);
    expect(endpoints).toEqual([PORT_ADMIN_NAME]);
    const scrape = parse(readFileSync(join(ROOT, 'deploy/prometheus/scrape-config.yaml'), 'utf8')) as {
      scrape_configs: { relabel_configs: Obj[] }[];
    };
    const keeps = (scrape.scrape_configs[0]?.relabel_configs ?? []).filter((r) => r.action === 'keep');
    expect(keeps.map((k) => k.regex)).toEqual(['true', PORT_ADMIN_NAME]);
    expect(PROMETHEUS_ANNOTATIONS['prometheus.io/port']).toBe(String(PORT_ADMIN));
    const ca = parseDocuments(readFileSync(join(ROOT, 'deploy/base/ca.yaml'), 'utf8'), 'ca.yaml').find(
      (d) => d.kind === 'Deployment',
    ) as Obj;
    const template = (ca.spec as Obj).template as Obj;
    expect((template.metadata as Obj).annotations).toEqual({
      'meshauth.dev/inject': 'false',
      ...PROMETHEUS_ANNOTATIONS,
    });
  });
});

/**
 * Whether Prometheus keeps a discovered target after the keep and drop rules of `rules` (source labels joined with
 * ";", the regex anchored at both ends, as Prometheus applies them).
 */
function scraped(rules: readonly Obj[], labels: Record<string, string>): boolean {
  for (const rule of rules) {
    if (rule.action !== 'keep' && rule.action !== 'drop') continue;
    const value = ((rule.source_labels as string[]) ?? []).map((l) => labels[l] ?? '').join(';');
    const matches = new RegExp(`^(?:${String(rule.regex ?? '(.*)')})$`).test(value);
    if (matches !== (rule.action === 'keep')) return false;
  }
  return true;
}
