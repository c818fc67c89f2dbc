// A stand-in for `kubectl kustomize` where kubectl is not installed: renders the subset of
// kustomize that deploy/ uses (resources as files or directories, namespace, metadata labels,
// configMapGenerator with files and generatorOptions labels, image tags). Generated
// ConfigMaps keep their plain names (no content hash). Usage: node render.mjs DIR > out.yaml
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parse, parseAllDocuments, stringify } from "yaml";

const clusterScoped = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass"]);

function render(dir) {
  const k = parse(readFileSync(join(dir, "kustomization.yaml"), "utf8"));
  const docs = [];
  for (const r of k.resources ?? []) {
    if (r.endsWith(".yaml") || r.endsWith(".yml")) {
      for (const d of parseAllDocuments(readFileSync(join(dir, r), "utf8"))) {
        const obj = d.toJS();
        if (obj) docs.push(obj);
      }
    } else {
      docs.push(...render(join(dir, r)));
    }
  }
  for (const g of k.configMapGenerator ?? []) {
    const data = {};
    for (const f of g.files ?? []) {
      const [key, path] = f.includes("=") ? f.split("=") : [basename(f), f];
      data[key] = readFileSync(join(dir, path), "utf8");
    }
    const labels = { ...(k.generatorOptions?.labels ?? {}) };
    docs.push({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: g.name, ...(Object.keys(labels).length ? { labels } : {}) }, data });
  }
  for (const d of docs) {
    if (k.namespace && !clusterScoped.has(d.kind)) d.metadata.namespace = k.namespace;
    if (k.namespace && d.kind === "ClusterRoleBinding") {
      for (const s of d.subjects ?? []) if (s.kind === "ServiceAccount") s.namespace = k.namespace;
    }
    for (const l of k.labels ?? []) d.metadata.labels = { ...(d.metadata.labels ?? {}), ...l.pairs };
    for (const image of k.images ?? []) {
      for (const c of d.spec?.template?.spec?.containers ?? []) {
        if (c.image.split(":")[0] === image.name && image.newTag) c.image = `${image.name}:${image.newTag}`;
      }
    }
  }
  return docs;
}

process.stdout.write(render(process.argv[2]).map((d) => stringify(d)).join("---\n"));
