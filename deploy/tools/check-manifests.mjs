// Offline checks of Kubernetes manifests, three ways:
//  1. schema: each document against the Kubernetes / Prometheus Operator OpenAPI schemas
//     (kubernetes-models' validators: types, enums, patterns, quantities, required fields);
//  2. strict: each document as a typed TypeScript literal, compiled with tsc, which refuses
//     fields the schema does not know (the schemas allow unknown fields, so a misspelled
//     readOnlyRootFilesystem would pass the first way);
//  3. policy: what no schema sees — selectors that match, hardened containers, limits, names,
//     priorities, alert metadata, ConfigMap sizes.
// Usage: node check-manifests.mjs FILE.yaml...   Prints one line per finding and
// "N passed, M failed"; exits 1 when anything failed.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));

function modelModule(apiVersion, kind) {
  const slash = apiVersion.indexOf("/");
  if (slash < 0) return `kubernetes-models/${apiVersion}/${kind}`;
  const group = apiVersion.slice(0, slash);
  const pkg = group === "monitoring.coreos.com" ? "@kubernetes-models/prometheus-operator" : "kubernetes-models";
  return `${pkg}/${apiVersion}/${kind}`;
}

const docs = [];
const failures = [];
const fail = (where, message) => failures.push(`FAIL ${where}: ${message}`);

for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"), { uniqueKeys: true })) {
    if (doc.errors.length > 0) {
      fail(file, `YAML: ${doc.errors[0].message}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj == null) continue;
    docs.push({ file, obj, where: `${file}: ${obj.kind}/${obj.metadata?.name}` });
  }
}

// 1. Schema.
for (const d of docs) {
  const { apiVersion, kind } = d.obj;
  let Model;
  try {
    Model = (await import(modelModule(apiVersion, kind)))[kind];
  } catch {
    fail(d.where, `no schema for ${apiVersion} ${kind}`);
    continue;
  }
  try {
    new Model(d.obj).validate();
  } catch (e) {
    fail(d.where, `schema: ${e.message}`);
  }
}

// 2. Strict: unknown fields.
{
  const strictDir = join(here, ".strict");
  mkdirSync(strictDir, { recursive: true });
  const lines = [];
  const owner = []; // line number -> document index
  docs.forEach((d, i) => {
    const text =
      `import type { I${d.obj.kind} as T${i} } from "${modelModule(d.obj.apiVersion, d.obj.kind)}";\n` +
      `export const doc${i}: T${i} = ${JSON.stringify(d.obj, null, 1)};\n`;
    for (const l of text.split("\n")) {
      lines.push(l);
      owner.push(i);
    }
  });
  writeFileSync(join(strictDir, "documents.ts"), lines.join("\n"));
  writeFileSync(
    join(strictDir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { strict: true, noEmit: true, module: "nodenext", moduleResolution: "nodenext", skipLibCheck: true, types: [] },
      files: ["documents.ts"],
    }),
  );
  try {
    execFileSync(join(here, "node_modules", ".bin", "tsc"), ["-p", strictDir], { cwd: here, encoding: "utf8" });
  } catch (e) {
    const out = `${e.stdout ?? ""}${e.stderr ?? ""}`;
    for (const line of out.split("\n").filter((l) => l.trim() !== "")) {
      const m = line.match(/documents\.ts\((\d+),/);
      const d = m ? docs[owner[Number(m[1]) - 1]] : null;
      fail(d ? d.where : "strict", line.replace(/^.*?error /, ""));
    }
  }
}

// 3. Policy.
const byKind = (kind) => docs.filter((d) => d.obj.kind === kind);
const subset = (want, have) => Object.entries(want ?? {}).every(([k, v]) => (have ?? {})[k] === v);
const dns1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const workloads = [...byKind("DaemonSet"), ...byKind("Deployment"), ...byKind("StatefulSet")];
const priorityClasses = new Set(byKind("PriorityClass").map((d) => d.obj.metadata.name));

for (const d of docs) {
  const name = d.obj.metadata?.name ?? "";
  if (!dns1123.test(name) || name.length > 253) fail(d.where, `name "${name}" is not a DNS-1123 name`);
}
for (const d of byKind("Namespace")) {
  if (!d.obj.metadata.labels?.["pod-security.kubernetes.io/enforce"]) {
    fail(d.where, "no pod-security.kubernetes.io/enforce label");
  }
}
for (const d of byKind("PriorityClass")) {
  if (d.obj.value > 1e9) fail(d.where, `value ${d.obj.value} is over 1e9 (reserved for system classes)`);
}
for (const d of workloads) {
  const spec = d.obj.spec;
  const pod = spec.template.spec;
  if (!subset(spec.selector?.matchLabels, spec.template.metadata?.labels)) {
    fail(d.where, "spec.selector.matchLabels is not a subset of the pod template's labels");
  }
  if (pod.priorityClassName && !pod.priorityClassName.startsWith("system-") && !priorityClasses.has(pod.priorityClassName)) {
    fail(d.where, `priorityClassName ${pod.priorityClassName} is defined nowhere`);
  }
  const podSec = pod.securityContext ?? {};
  const mounts = new Map();
  for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
    const at = `${d.where} container ${c.name}`;
    const sec = c.securityContext ?? {};
    if (!(sec.runAsNonRoot ?? podSec.runAsNonRoot)) fail(at, "not runAsNonRoot");
    if (sec.readOnlyRootFilesystem !== true) fail(at, "root filesystem not read-only");
    if (sec.allowPrivilegeEscalation !== false) fail(at, "allowPrivilegeEscalation is not false");
    if (!(sec.capabilities?.drop ?? []).includes("ALL")) fail(at, "capabilities do not drop ALL");
    if ((sec.seccompProfile ?? podSec.seccompProfile)?.type !== "RuntimeDefault") fail(at, "seccomp profile is not RuntimeDefault");
    const r = c.resources ?? {};
    if (!r.requests?.cpu || !r.requests?.memory) fail(at, "no cpu and memory requests");
    if (!r.limits?.memory) fail(at, "no memory limit");
    if (r.requests?.memory !== r.limits?.memory) fail(at, "memory request differs from the limit");
    for (const m of c.volumeMounts ?? []) mounts.set(`${m.name}`, [...(mounts.get(m.name) ?? []), m]);
  }
  for (const v of pod.volumes ?? []) {
    if (v.hostPath && (mounts.get(v.name) ?? []).some((m) => m.readOnly !== true)) {
      fail(d.where, `hostPath volume ${v.name} is mounted writable`);
    }
    if (v.configMap && !docs.some((o) => o.obj.kind === "ConfigMap" && o.obj.metadata.name === v.configMap.name)) {
      fail(d.where, `volume ${v.name} names ConfigMap ${v.configMap.name}, which is not among the manifests`);
    }
  }
}
const podsMatching = (namespace, labels) =>
  workloads.filter((w) => w.obj.metadata.namespace === namespace && subset(labels, w.obj.spec.template.metadata.labels));
for (const d of byKind("Service")) {
  if (d.obj.spec.selector && podsMatching(d.obj.metadata.namespace, d.obj.spec.selector).length === 0) {
    fail(d.where, "its selector matches no workload's pods");
  }
}
for (const d of byKind("NetworkPolicy")) {
  if (podsMatching(d.obj.metadata.namespace, d.obj.spec.podSelector.matchLabels).length === 0) {
    fail(d.where, "its podSelector matches no workload's pods");
  }
}
for (const d of byKind("ServiceMonitor")) {
  const services = byKind("Service").filter(
    (s) => s.obj.metadata.namespace === d.obj.metadata.namespace && subset(d.obj.spec.selector.matchLabels, s.obj.metadata.labels),
  );
  if (services.length === 0) fail(d.where, "its selector matches no Service");
  for (const e of d.obj.spec.endpoints) {
    if (!services.some((s) => s.obj.spec.ports.some((p) => p.name === e.port))) fail(d.where, `no selected Service has a port named ${e.port}`);
  }
}
for (const d of byKind("PodMonitor")) {
  const pods = podsMatching(d.obj.metadata.namespace, d.obj.spec.selector.matchLabels);
  if (pods.length === 0) fail(d.where, "its selector matches no workload's pods");
  for (const e of d.obj.spec.podMetricsEndpoints) {
    const named = pods.some((w) => w.obj.spec.template.spec.containers.some((c) => (c.ports ?? []).some((p) => p.name === e.port)));
    if (!named) fail(d.where, `no selected pod has a port named ${e.port}`);
  }
}
for (const d of byKind("PrometheusRule")) {
  for (const g of d.obj.spec.groups) {
    for (const r of g.rules.filter((x) => x.alert)) {
      if (!r.labels?.severity) fail(d.where, `alert ${r.alert} has no severity label`);
      if (!r.annotations?.summary) fail(d.where, `alert ${r.alert} has no summary annotation`);
    }
  }
}
for (const d of byKind("ConfigMap")) {
  const size = Object.values(d.obj.data ?? {}).reduce((n, v) => n + Buffer.byteLength(v), 0);
  // kubectl apply keeps the whole object in an annotation, which is limited to 256 KiB.
  if (size >= 262144) fail(d.where, `${size} bytes: too large for kubectl apply (use --server-side)`);
}

for (const f of failures) console.log(f);
// A finding belongs to the document its location starts with (YAML errors to none).
const failed = docs.filter((d) => failures.some((f) => f.startsWith(`FAIL ${d.where}`))).length;
const unowned = failures.filter((f) => !docs.some((d) => f.startsWith(`FAIL ${d.where}`))).length;
console.log(`${docs.length - failed} passed, ${failed + unowned} failed`);
process.exit(failures.length > 0 ? 1 : 0);
