import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { RehearsalError } from './errors.ts';

/** A CloudFormation template as JSON. */
export interface Template {
  Resources?: Record<string, TemplateResource>;
  Outputs?: Record<string, { Value: unknown; Export?: { Name: unknown } }>;
}

export interface TemplateResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
}

/** One stack of a cloud assembly, with where it deploys. */
export interface AssemblyStack {
  name: string;
  account: string;
  region: string;
  template: Template;
  /** Asset folders by the S3 object key the template's `Code` names (from the stack's asset manifest). */
  assetsByObjectKey: Map<string, string>;
}

/** A synthesized cloud assembly (`cdk.out`), as `cdk deploy` would read it. */
export interface CloudAssembly {
  dir: string;
  stacks: AssemblyStack[];
}

interface Manifest {
  artifacts?: Record<
    string,
    {
      type: string;
      environment?: string;
      properties?: { templateFile?: string; file?: string; stackName?: string };
      dependencies?: string[];
    }
  >;
}

interface AssetManifest {
  files?: Record<
    string,
    { source: { path: string; packaging?: string }; destinations: Record<string, { objectKey: string }> }
  >;
}

const run = promisify(execFile);

/** The project root: where `cdk.json` and the CDK app are. */
export const PROJECT_ROOT = fileURLToProjectRoot();

function fileURLToProjectRoot(): string {
  return resolve(new URL('..', import.meta.url).pathname);
}

/**
 * Synthesizes the CDK app with the project's own CDK CLI into `outdir`, exactly as `cdk deploy` would
 * before it deploys (bundling every function with esbuild). `context` holds more `-c key=value` options.
 */
export async function synthesize(outdir: string, context: string[] = []): Promise<void> {
  const cdk = join(PROJECT_ROOT, 'node_modules', '.bin', 'cdk');
  try {
    await run(cdk, ['synth', '--quiet', '--output', outdir, ...context], {
      cwd: PROJECT_ROOT,
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, CI: 'true' },
    });
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr ?? String(error);
    throw new RehearsalError(`cdk synth failed:\n${detail.trim()}`);
  }
}

/** Reads a cloud assembly's stacks, templates and asset manifests as they are. */
export function readAssembly(dir: string): CloudAssembly {
  const manifestFile = join(dir, 'manifest.json');
  if (!existsSync(manifestFile)) {
    throw new RehearsalError(`${dir} is not a cloud assembly: it has no manifest.json. Run cdk synth first.`);
  }
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
  const artifacts = manifest.artifacts ?? {};
  const stacks: AssemblyStack[] = [];
  for (const [id, artifact] of Object.entries(artifacts)) {
    if (artifact.type !== 'aws:cloudformation:stack') continue;
    const templateFile = artifact.properties?.templateFile;
    if (!templateFile) throw new RehearsalError(`Stack ${id} of ${dir} names no template file.`);
    const env = /^aws:\/\/(\d{12})\/([a-z0-9-]+)$/.exec(artifact.environment ?? '');
    if (!env) {
      throw new RehearsalError(
        `Stack ${id} has the environment "${artifact.environment}"; the rehearsal needs an explicit account and region (the configuration's env).`,
      );
    }
    const assetsByObjectKey = new Map<string, string>();
    for (const dependency of artifact.dependencies ?? []) {
      const assetArtifact = artifacts[dependency];
      const file = assetArtifact?.properties?.file;
      if (assetArtifact?.type !== 'cdk:asset-manifest' || !file) continue;
      const assets = JSON.parse(readFileSync(join(dir, file), 'utf8')) as AssetManifest;
      for (const asset of Object.values(assets.files ?? {})) {
        for (const destination of Object.values(asset.destinations)) {
          assetsByObjectKey.set(destination.objectKey, join(dir, asset.source.path));
        }
      }
    }
    stacks.push({
      name: artifact.properties?.stackName ?? id,
      account: env[1] ?? '',
      region: env[2] ?? '',
      template: JSON.parse(readFileSync(join(dir, templateFile), 'utf8')) as Template,
      assetsByObjectKey,
    });
  }
  if (stacks.length === 0) throw new RehearsalError(`The cloud assembly ${dir} holds no stack.`);
  return { dir, stacks };
}

/** Every resource of the assembly, with its stack. */
export function* resources(
  assembly: CloudAssembly,
  type?: string,
): Generator<{ stack: AssemblyStack; logicalId: string; resource: TemplateResource }> {
  for (const stack of assembly.stacks) {
    for (const [logicalId, resource] of Object.entries(stack.template.Resources ?? {})) {
      if (type === undefined || resource.Type === type) yield { stack, logicalId, resource };
    }
  }
}
