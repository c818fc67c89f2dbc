// Takes apart rendered manifests and dashboards for the checks that need the real tools
// (vigil check config / check rules, promtool, amtool), and checks the dashboards' own rules.
// Usage: node extract.mjs OUT_DIR DASHBOARD_DIR RULES_DIR RENDERED.yaml...
// Writes into OUT_DIR: vigil.yaml (the agent's ConfigMap), rules/*.yml (the rules ConfigMap),
// prometheus.yml (with static targets for Kubernetes discovery), alertmanager.yml, and dashboard-queries.yml (every panel and variable query
// as a recording rule, template variables replaced, so that PromQL parsers can judge them).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { parse, parseAllDocuments, stringify } from "yaml";

const [out, dashboardDir, rulesDir, ...rendered] = process.argv.slice(2);
mkdirSync(join(out, "rules"), { recursive: true });
const problems = [];

const docs = rendered.flatMap((f) => parseAllDocuments(readFileSync(f, "utf8")).map((d) => d.toJS()).filter(Boolean));
const configMap = (prefix, key) => {
  const cm = docs.find((d) => d.kind === "ConfigMap" && d.metadata.name.startsWith(prefix) && d.data?.[key] !== undefined);
  if (!cm) problems.push(`no ConfigMap ${prefix}* with ${key}`);
  return cm?.data ?? {};
};
writeFileSync(join(out, "vigil.yaml"), configMap("vigil-config", "vigil.yaml")["vigil.yaml"] ?? "");
for (const [name, text] of Object.entries(configMap("vigil-rules", "node.yml"))) {
  writeFileSync(join(out, "rules", name), text);
}
// Debian's promtool is built without Kubernetes discovery: it checks a copy whose
// kubernetes_sd_configs are replaced by a static target (the rest, relabeling included, as is).
const prometheusYml = parse(configMap("prometheus-config", "prometheus.yml")["prometheus.yml"] ?? "{}") ?? {};
for (const sc of prometheusYml.scrape_configs ?? []) {
  if (sc.kubernetes_sd_configs) {
    delete sc.kubernetes_sd_configs;
    sc.static_configs = [{ targets: ["127.0.0.1:9810"] }];
  }
}
writeFileSync(join(out, "prometheus.yml"), stringify(prometheusYml));
writeFileSync(join(out, "alertmanager.yml"), configMap("alertmanager-config", "alertmanager.yml")["alertmanager.yml"] ?? "");

// The PrometheusRule and the plain rule file for Prometheus say the same.
const promRule = docs.find((d) => d.kind === "PrometheusRule");
const selfRules = parse(readFileSync(join(rulesDir, "vigil-self.yml"), "utf8"));
if (promRule && !isDeepStrictEqual(promRule.spec.groups, selfRules.groups)) {
  problems.push("the PrometheusRule's groups differ from deploy/rules/vigil-self.yml");
}

// Dashboards must be classic JSON with a stable uid and a ${datasource} variable, and carry no
// __inputs: those are import-time placeholders, which Grafana does not fill in for provisioned
// dashboards. Every query must be valid PromQL once Grafana's variables are replaced by
// stand-in values (below).
const substitutions = [
  [/\$__rate_interval|\$\{__rate_interval\}|\$__interval|\$\{__interval\}/g, "1m"],
  [/\$__range|\$\{__range\}/g, "1h"],
  [/\$\{(\w+)(:\w+)?\}|\$(\w+)/g, "x"],
];
const rules = [];
for (const file of readdirSync(dashboardDir).filter((f) => f.endsWith(".json")).sort()) {
  const where = `dashboard ${file}`;
  let d;
  try {
    d = JSON.parse(readFileSync(join(dashboardDir, file), "utf8"));
  } catch (e) {
    problems.push(`${where}: not JSON: ${e.message}`);
    continue;
  }
  if (!/^[a-z0-9-]{8,40}$/.test(d.uid ?? "")) problems.push(`${where}: uid "${d.uid}" is not a stable 8-40 character id`);
  if (d.__inputs) problems.push(`${where}: has __inputs`);
  const vars = d.templating?.list ?? [];
  if (!vars.some((v) => v.name === "datasource" && v.type === "datasource")) problems.push(`${where}: no datasource variable`);
  const ids = new Set();
  const queries = [];
  for (const v of vars.filter((x) => x.type === "query")) {
    const q = typeof v.query === "string" ? v.query : v.query?.query;
    const m = /^label_values\((.*),\s*\w+\)$/.exec(q ?? "");
    if (m) queries.push([`variable ${v.name}`, m[1]]);
    else problems.push(`${where}: variable ${v.name}: unsupported query ${q}`);
  }
  for (const p of d.panels ?? []) {
    if (ids.has(p.id)) problems.push(`${where}: panel id ${p.id} twice`);
    ids.add(p.id);
    if (p.type === "row") continue;
    if (p.datasource?.uid !== "${datasource}") problems.push(`${where}: panel "${p.title}" does not use \${datasource}`);
    if (!p.targets?.length) problems.push(`${where}: panel "${p.title}" has no query`);
    for (const t of p.targets ?? []) queries.push([`panel "${p.title}" ${t.refId}`, t.expr]);
  }
  for (const [what, expr] of queries) {
    let promql = expr ?? "";
    for (const [re, to] of substitutions) promql = promql.replace(re, to);
    rules.push({ record: `dashboard:query_${rules.length}`, expr: promql });
    console.log(`${file}: ${what}: dashboard:query_${rules.length - 1}`);
  }
}
writeFileSync(join(out, "dashboard-queries.yml"), stringify({ groups: [{ name: "dashboard-queries", rules }] }));

for (const p of problems) console.log(`FAIL ${p}`);
process.exit(problems.length > 0 ? 1 : 0);
