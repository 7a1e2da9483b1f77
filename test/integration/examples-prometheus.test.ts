// examples/prometheus/ and examples/grafana/ against the real tools: the alert rules checked by promtool
// and each alert tested by `promtool test rules` on synthetic series; the Grafana dashboard's every panel
// query run by a real Prometheus server (Debian's) that scrapes drain-init, with a real Sidekiq under it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { parseExposition } from '../helpers/exposition.js';
import { killedAfterEach, ROOT, waitFor } from '../helpers/pid1.js';
import { probeRequest, startWithProbe, waitForProbe } from '../helpers/probe.js';
import { freePort } from '../helpers/redis.js';
import { enqueue, sidekiqCommand, sidekiqEnv, sidekiqTestBed } from '../helpers/sidekiq.js';

const run = promisify(execFile);
const RULES = `${ROOT}examples/prometheus/drain-init.rules.yml`;
const PROMETHEUS_RULE = `${ROOT}examples/prometheus/prometheus-rule.yaml`;
const DASHBOARD = `${ROOT}examples/grafana/drain-init-sidekiq.json`;

interface RuleGroup {
  readonly name: string;
  readonly rules: readonly { readonly alert: string; readonly expr: string }[];
}

/** The metric names an expression reads (words followed by a selector or a range, or alone). */
function metricNames(expr: string): string[] {
  const names = expr.match(/\b(?:drain_init|sidekiq)_[a-z_]+\b/g) ?? [];
  return [...new Set(names)];
}

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'drain-init-prometheus-'));
});

describe('the alert rules', () => {
  const groups = (parseYaml(readFileSync(RULES, 'utf8')) as { groups: RuleGroup[] }).groups;

  it('pass promtool check rules, as a rules file and as the PrometheusRule, which holds the same groups', async () => {
    const resource = parseYaml(readFileSync(PROMETHEUS_RULE, 'utf8')) as {
      apiVersion: string;
      kind: string;
      spec: { groups: RuleGroup[] };
    };
    expect(`${resource.apiVersion} ${resource.kind}`).toBe('monitoring.coreos.com/v1 PrometheusRule');
    expect(resource.spec.groups).toEqual(groups);
    const fromResource = join(dir, 'from-resource.yml');
    writeFileSync(fromResource, stringify({ groups: resource.spec.groups }));
    for (const file of [RULES, fromResource]) {
      const { stdout } = await run('promtool', ['check', 'rules', file]);
      expect(stdout).toContain('SUCCESS: 5 rules found');
    }
    expect(groups.flatMap((group) => group.rules.map((rule) => rule.alert))).toEqual([
      'DrainInitWorkerHeartbeatStale',
      'DrainInitJobsRecovered',
      'DrainInitJobsDead',
      'DrainInitWorkerOOMKilled',
      'DrainInitStopCut',
    ]);
  });

  it('fire on the series that mean their event, and on no other (promtool test rules, synthetic series)', async () => {
    const pod = (instance: string) => `job="sidekiq", instance="${instance}"`;
    const description = (alert: string): string =>
      (
        parseYaml(readFileSync(RULES, 'utf8')) as {
          groups: { rules: { alert: string; annotations: { description: string } }[] }[];
        }
      ).groups
        .flatMap((group) => group.rules)
        .find((rule) => rule.alert === alert)?.annotations.description ?? '';
    const fired = (alert: string, labels: Record<string, string>, summary: string) => ({
      exp_labels: { job: 'sidekiq', ...labels },
      exp_annotations: { summary, description: description(alert) },
    });
    const tests = {
      rule_files: [RULES],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: [
            // worker-a hangs at minute 2; worker-b's heartbeat is stale only while Redis is down; worker-c stops.
            { series: `drain_init_worker_heartbeat_age_seconds{${pod('a')}}`, values: '5 5 65 125 185 245' },
            { series: `drain_init_redis_up{${pod('a')}}`, values: '1x5' },
            { series: `drain_init_state{${pod('a')}, state="running"}`, values: '1x5' },
            { series: `drain_init_worker_heartbeat_age_seconds{${pod('b')}}`, values: '5 65 125 185 245 305' },
            { series: `drain_init_redis_up{${pod('b')}}`, values: '0x5' },
            { series: `drain_init_state{${pod('b')}, state="running"}`, values: '1x5' },
            { series: `drain_init_worker_heartbeat_age_seconds{${pod('c')}}`, values: '5 65 125 185 245 305' },
            { series: `drain_init_redis_up{${pod('c')}}`, values: '1x5' },
            { series: `drain_init_state{${pod('c')}, state="running"}`, values: '0x5' },
            // Two jobs recovered by worker-a at minute 3.
            { series: `drain_init_jobs_recovered_total{${pod('a')}}`, values: '0 0 0 2 2 2' },
            // One job to the Dead set by worker-b at minute 2.
            { series: `drain_init_jobs_dead_total{${pod('b')}}`, values: '0 0 1 1 1 1' },
            // worker-c's worker OOM-killed at minute 1; a plain signal death is no OOM.
            { series: `drain_init_worker_deaths_total{${pod('c')}, cause="oom-killed"}`, values: '0 1 1 1 1 1' },
            { series: `drain_init_worker_deaths_total{${pod('a')}, cause="signal"}`, values: '0 1 1 1 1 1' },
            // The fleet's count, the same from both pods: one stop cut at minute 4.
            { series: `drain_init_stops_cut_total{${pod('a')}}`, values: '3 3 3 3 4 4' },
            { series: `drain_init_stops_cut_total{${pod('b')}}`, values: '3 3 3 3 4 4' },
          ],
          alert_rule_test: [
            { eval_time: '2m', alertname: 'DrainInitWorkerHeartbeatStale', exp_alerts: [] },
            {
              eval_time: '4m',
              alertname: 'DrainInitWorkerHeartbeatStale',
              exp_alerts: [
                fired(
                  'DrainInitWorkerHeartbeatStale',
                  { severity: 'critical', instance: 'a' },
                  'Sidekiq under a has not beaten for 3m 5s',
                ),
              ],
            },
            { eval_time: '2m', alertname: 'DrainInitJobsRecovered', exp_alerts: [] },
            {
              eval_time: '4m',
              alertname: 'DrainInitJobsRecovered',
              exp_alerts: [
                fired(
                  'DrainInitJobsRecovered',
                  { severity: 'warning', instance: 'a' },
                  'Jobs of a dead worker were put back in their queue by a',
                ),
              ],
            },
            { eval_time: '1m', alertname: 'DrainInitJobsDead', exp_alerts: [] },
            {
              eval_time: '3m',
              alertname: 'DrainInitJobsDead',
              exp_alerts: [
                fired(
                  'DrainInitJobsDead',
                  { severity: 'warning', instance: 'b' },
                  "Jobs were sent to Sidekiq's Dead set by b",
                ),
              ],
            },
            { eval_time: '0m', alertname: 'DrainInitWorkerOOMKilled', exp_alerts: [] },
            {
              eval_time: '2m',
              alertname: 'DrainInitWorkerOOMKilled',
              exp_alerts: [
                fired(
                  'DrainInitWorkerOOMKilled',
                  { severity: 'warning', instance: 'c', cause: 'oom-killed' },
                  'The worker under c was OOM-killed',
                ),
              ],
            },
            { eval_time: '3m', alertname: 'DrainInitStopCut', exp_alerts: [] },
            {
              eval_time: '5m',
              alertname: 'DrainInitStopCut',
              exp_alerts: [
                fired(
                  'DrainInitStopCut',
                  { severity: 'warning' },
                  "Stops of sidekiq ran out of the platform's grace period",
                ),
              ],
            },
          ],
        },
      ],
    };
    const file = join(dir, 'rules.test.yml');
    writeFileSync(file, stringify(tests));
    const { stdout } = await run('promtool', ['test', 'rules', file]).catch(
      (error: { stdout?: string; stderr?: string }) => {
        throw new Error(`promtool test rules failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
      },
    );
    expect(stdout).toContain('SUCCESS');
  });
});

/** A real Prometheus server on loopback: scrapes one target every second and loads the rules. */
async function startPrometheus(target: string): Promise<{ url: string; process: ChildProcess }> {
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [RULES],
      scrape_configs: [{ job_name: 'sidekiq', static_configs: [{ targets: [target] }] }],
    }),
  );
  const child = spawn(
    'prometheus',
    [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: 'ignore' },
  );
  return { url: `http://127.0.0.1:${port}`, process: child };
}

async function prometheusApi(url: string, path: string): Promise<{ status: string; data: unknown }> {
  const response = await fetch(`${url}${path}`);
  return (await response.json()) as { status: string; data: unknown };
}

describe('the Grafana dashboard', () => {
  const bed = sidekiqTestBed();
  const track = killedAfterEach();
  let prometheus: ChildProcess | undefined;
  afterAll(() => {
    prometheus?.kill('SIGKILL');
  });

  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    templating: { list: { name: string; type: string }[] };
    panels: { type: string; title: string; targets?: { expr: string; datasource: { uid: string } }[] }[];
  };
  const panels = dashboard.panels.filter((panel) => panel.type !== 'row');

  it('has a query in every panel, each on the datasource variable', () => {
    expect(dashboard.templating.list.map((variable) => `${variable.name}:${variable.type}`)).toEqual([
      'datasource:datasource',
      'job:query',
    ]);
    expect(panels.length).toBeGreaterThan(10);
    for (const panel of panels) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const target of panel.targets ?? []) expect(target.datasource.uid).toBe('${datasource}');
    }
  });

  it("runs every panel's query against drain-init's exposition, scraped by a real Prometheus", async () => {
    const env = sidekiqEnv({ redisUrl: bed.redis().url, markerDir: bed.markerDir() });
    const { run: drainInit, port } = await startWithProbe(['--', ...sidekiqCommand()], { env });
    track(drainInit);
    await waitForProbe(port, '/readyz', (answer) => answer.status === 200, 'Sidekiq registered', 30_000);
    // Two jobs running (concurrency 2) and one waiting, so every queue panel has a series.
    for (const tag of ['a', 'b', 'c']) await enqueue(bed.redis(), { args: [60, tag] });
    await waitFor(
      () => readdirSync(bed.markerDir()).filter((name) => name.endsWith('.started')).length === 2 || undefined,
      'two jobs running',
      30_000,
    );
    // A forwarded signal, so the signal panel has a series (TTIN: Sidekiq logs its threads).
    process.kill(await drainInit.pid(), 'SIGTTIN');
    await waitFor(() => drainInit.stderr().includes('"forwarded signal"') || undefined, 'the forwarded signal');
    const exposed = parseExposition((await probeRequest(port, '/metrics')).body);

    const server = await startPrometheus(`127.0.0.1:${port}`);
    prometheus = server.process;
    // Enough scrapes for rate() over 30 s windows.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const answer = await prometheusApi(server.url, '/api/v1/query?query=count_over_time(up[1m])').catch(
        () => undefined,
      );
      const samples = (answer?.data as { result?: { value: [number, string] }[] } | undefined)?.result?.[0]?.value[1];
      if (Number(samples) >= 8) break;
      if (Date.now() > deadline) throw new Error('Prometheus did not scrape drain-init');
      await new Promise((resolve) => setTimeout(resolve, 500));
    }

    const empty: string[] = [];
    for (const panel of panels) {
      for (const target of panel.targets ?? []) {
        for (const name of metricNames(target.expr)) expect(exposed.has(name), `${panel.title}: ${name}`).toBe(true);
        const query = target.expr.replaceAll('$job', 'sidekiq').replaceAll('$__rate_interval', '30s');
        const answer = await prometheusApi(server.url, `/api/v1/query?query=${encodeURIComponent(query)}`);
        expect(answer.status, `${panel.title}: ${query}`).toBe('success');
        if ((answer.data as { result: unknown[] }).result.length === 0) empty.push(`${panel.title}: ${query}`);
      }
    }
    expect(empty).toEqual([]);

    // The alert rules load and evaluate against the same data, and the names they read that drain-init
    // serves today are all in its exposition.
    const rules = await prometheusApi(server.url, '/api/v1/rules');
    const loaded = (rules.data as { groups: { rules: { name: string; health: string }[] }[] }).groups.flatMap(
      (group) => group.rules,
    );
    expect(loaded.map((rule) => `${rule.name}:${rule.health}`)).toEqual([
      'DrainInitWorkerHeartbeatStale:ok',
      'DrainInitJobsRecovered:ok',
      'DrainInitJobsDead:ok',
      'DrainInitWorkerOOMKilled:ok',
      'DrainInitStopCut:ok',
    ]);
    const ruleNames = (parseYaml(readFileSync(RULES, 'utf8')) as { groups: RuleGroup[] }).groups.flatMap((group) =>
      group.rules.flatMap((rule) => metricNames(rule.expr)),
    );
    expect(ruleNames.filter((name) => !exposed.has(name))).toEqual([]);
  }, 120_000);
});
