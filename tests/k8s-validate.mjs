// Validate Kubernetes manifests against the API's JSON schemas (the npm
// package kubernetes-models, whose classes check with ajv).
// usage: node k8s-validate.mjs FILE...   exit 0 when every document is a
// known kind and valid; prints one line per document.
import fs from 'fs';
import YAML from 'yaml';
import { DaemonSet, Deployment } from 'kubernetes-models/apps/v1';
import { Pod, ConfigMap } from 'kubernetes-models/v1';

const kinds = {
  'apps/v1/DaemonSet': DaemonSet,
  'apps/v1/Deployment': Deployment,
  'v1/Pod': Pod,
  'v1/ConfigMap': ConfigMap,
};
for (const f of process.argv.slice(2)) {
  for (const doc of YAML.parseAllDocuments(fs.readFileSync(f, 'utf8'))) {
    if (doc.errors.length) {
      console.log('INVALID', f, doc.errors[0].message);
      process.exitCode = 1;
      continue;
    }
    const o = doc.toJSON();
    const K = o && kinds[o.apiVersion + '/' + o.kind];
    if (!K) {
      console.log('UNKNOWN', f, o && o.kind);
      process.exitCode = 1;
      continue;
    }
    try {
      new K(o).validate();
      console.log('valid', f, o.kind);
    } catch (e) {
      console.log('INVALID', f, e.message);
      process.exitCode = 1;
    }
  }
}
