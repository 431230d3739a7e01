// Reads the deployment manifests the way their tools do, for the invariant tests: YAML
// (with merge keys, as Compose has), a Dockerfile's stages, and the subset of kustomize
// our overlays use (resources, components, namespace, images, replicas, labels and
// JSON 6902 patches). An overlay that uses anything else fails loudly here.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';

export const ROOT = path.resolve(__dirname, '../../..');

export function readText(relative: string): string {
  return readFileSync(path.join(ROOT, relative), 'utf8');
}

/** One YAML document (merge keys `<<:` resolved, as Docker Compose does). */
export function readYaml<T = unknown>(relative: string): T {
  return parseYaml(readText(relative), { merge: true }) as T;
}

// Loose shapes: tests index into them and assert what they expect.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; [key: string]: any };

function documents(file: string): K8sObject[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  return docs
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((error) => error.message).join('; ')}`);
      return doc.toJSON() as K8sObject | null;
    })
    .filter((object): object is K8sObject => object !== null);
}

const KNOWN_FIELDS = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'components', 'images', 'replicas', 'patches', 'labels']);

interface Kustomization {
  apiVersion: string;
  kind: string;
  namespace?: string;
  resources?: string[];
  components?: string[];
  images?: Array<{ name: string; newName?: string; newTag?: string }>;
  replicas?: Array<{ name: string; count: number }>;
  labels?: Array<{ pairs: Record<string, string>; includeSelectors?: boolean }>;
  patches?: Array<{ target: { kind: string; name: string }; patch: string }>;
}

/** Renders a kustomization directory (relative to the repository root) to its objects. */
export function kustomize(relativeDir: string): K8sObject[] {
  return build(path.join(ROOT, relativeDir));
}

function build(dir: string): K8sObject[] {
  const kustomization = parseYaml(readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization;
  for (const field of Object.keys(kustomization)) {
    if (!KNOWN_FIELDS.has(field)) throw new Error(`${dir}/kustomization.yaml uses "${field}", which these tests do not model`);
  }
  let objects: K8sObject[] = [];
  for (const resource of kustomization.resources ?? []) {
    const target = path.join(dir, resource);
    objects.push(...(statSync(target).isDirectory() ? build(target) : documents(target)));
  }
  for (const component of kustomization.components ?? []) objects.push(...build(path.join(dir, component)));
  objects = structuredClone(objects);

  for (const { pairs } of kustomization.labels ?? []) {
    for (const object of objects) object.metadata.labels = { ...object.metadata.labels, ...pairs };
  }
  if (kustomization.namespace) {
    for (const object of objects) if (object.kind !== 'Namespace') object.metadata.namespace = kustomization.namespace;
  }
  for (const image of kustomization.images ?? []) {
    for (const container of containersOf(objects)) {
      const [name, tag] = splitImage(container.image);
      if (name !== image.name) continue;
      container.image = `${image.newName ?? name}:${image.newTag ?? tag}`;
    }
  }
  for (const { name, count } of kustomization.replicas ?? []) {
    const target = objects.find((object) => object.metadata.name === name && object.kind === 'Deployment');
    if (!target) throw new Error(`replicas: no Deployment ${name}`);
    target['spec'].replicas = count;
  }
  for (const { target, patch } of kustomization.patches ?? []) {
    const object = objects.find((candidate) => candidate.kind === target.kind && candidate.metadata.name === target.name);
    if (!object) throw new Error(`patch target ${target.kind}/${target.name} not found`);
    applyJsonPatch(object, parseYaml(patch) as JsonPatchOp[]);
  }
  return objects;
}

/** `name` and `tag` of an image reference (a registry port is not a tag). */
export function splitImage(image: string): [string, string | undefined] {
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash ? [image.slice(0, colon), image.slice(colon + 1)] : [image, undefined];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Container = { name: string; image: string; [key: string]: any };

/** Pod specs of workloads (Deployments, Jobs). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function podSpecOf(object: K8sObject): any {
  return object['spec']?.template?.spec;
}

export function containersOf(objects: K8sObject[]): Container[] {
  return objects.flatMap((object) => {
    const spec = podSpecOf(object);
    return spec ? [...(spec.initContainers ?? []), ...(spec.containers ?? [])] : [];
  });
}

interface JsonPatchOp {
  op: 'add' | 'replace' | 'remove';
  path: string;
  value?: unknown;
}

function applyJsonPatch(target: Record<string, unknown>, ops: JsonPatchOp[]): void {
  for (const op of ops) {
    const keys = op.path.split('/').slice(1).map((key) => key.replace(/~1/g, '/').replace(/~0/g, '~'));
    const last = keys.pop()!;
    let parent: Record<string, unknown> = target;
    for (const key of keys) parent = parent[key] as Record<string, unknown>;
    if (op.op === 'remove') delete parent[last];
    else if (op.op === 'replace' && !(last in parent)) throw new Error(`replace ${op.path}: no such field`);
    else parent[last] = op.value;
  }
}

/** Every file under a directory, relative to the repository root. */
export function filesUnder(relativeDir: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const child = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(child);
      else out.push(child);
    }
  };
  walk(relativeDir);
  return out.sort();
}

export interface DockerStage {
  name: string;
  from: string;
  /** Instructions as [keyword, rest], continuation lines joined. */
  instructions: Array<[string, string]>;
}

/** A Dockerfile's stages (ARGs before the first FROM are substituted into FROM lines). */
export function dockerStages(relative: string): DockerStage[] {
  const lines = readText(relative)
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const args: Record<string, string> = {};
  const stages: DockerStage[] = [];
  for (const line of lines) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const text = rest.join(' ');
    const upper = keyword.toUpperCase();
    if (upper === 'ARG' && stages.length === 0) {
      const [name, value = ''] = text.split('=');
      args[name!] = value;
    } else if (upper === 'FROM') {
      const match = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(text);
      if (!match) throw new Error(`cannot read FROM ${text}`);
      const from = match[1]!.replace(/\$\{(\w+)\}/g, (_all, name: string) => args[name] ?? '');
      stages.push({ name: match[2] ?? String(stages.length), from, instructions: [] });
    } else if (stages.length > 0) {
      stages[stages.length - 1]!.instructions.push([upper, text]);
    }
  }
  return stages;
}
