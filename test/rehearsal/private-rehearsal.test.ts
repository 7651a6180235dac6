import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REHEARSAL_PRIVATE_ACCESS,
  type RehearsalResult,
  rehearse,
  synthesizeForRehearsal,
} from '../../rehearsal/rehearse.ts';
import { changedAssemblyCopy } from './support.ts';

type Template = { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };

const workDir = mkdtempSync(join(tmpdir(), 'rehearsal-private-test-'));
const assemblyDir = join(workDir, 'cdk.out');

/** A copy of the synthesized assembly whose templates `change` edits. */
function changedAssembly(name: string, change: (templates: Template[]) => void): string {
  return changedAssemblyCopy(assemblyDir, join(workDir, name), change);
}

describe('the deployment rehearsal of private access', () => {
  let passing: RehearsalResult;

  beforeAll(async () => {
    await synthesizeForRehearsal(assemblyDir, { privateAccess: REHEARSAL_PRIVATE_ACCESS });
    passing = await rehearse({ assemblyDir });
  }, 300_000);

  afterAll(() => {
    rmSync(workDir, { recursive: true, force: true });
  });

  it('runs the whole journey with the IAM routes on the private REST API and the pages on the HTTP API', () => {
    const templates = readdirSync(assemblyDir)
      .filter((file) => file.endsWith('.template.json'))
      .map((file) => JSON.parse(readFileSync(join(assemblyDir, file), 'utf8')) as Template);
    const types = templates.flatMap((template) => Object.values(template.Resources).map((r) => r.Type));

    expect(types.filter((type) => type === 'AWS::ApiGateway::Method')).toHaveLength(8);
    expect(types.filter((type) => type === 'AWS::ApiGatewayV2::Route')).toHaveLength(2);
    expect(passing.failures).toEqual([]);
    expect(passing.ok).toBe(true);
    expect(passing.journey.map((step) => step.name)).toEqual(
      expect.arrayContaining([
        'an unsigned call to an IAM route is refused',
        'connect session, approval at Wise, callback and completion',
        'vend',
        'registration-code connection',
        'imported connection',
        'listing, page by page',
        'delete',
      ]),
    );
    expect(passing.journey.every((step) => step.ok)).toBe(true);
  });

  it('fails naming the REST method when an IAM method of the private API is left without authorization', async () => {
    const dir = changedAssembly('tokens-open', (templates) => {
      for (const template of templates) {
        for (const resource of Object.values(template.Resources)) {
          const props = resource.Properties;
          if (resource.Type === 'AWS::ApiGateway::Method' && props.HttpMethod === 'POST') {
            const pathPart = JSON.stringify(props.ResourceId);
            const target = Object.entries(template.Resources).find(([id]) => pathPart.includes(`"${id}"`));
            if (target?.[1].Properties.PathPart === 'tokens') props.AuthorizationType = 'NONE';
          }
        }
      }
    });

    const result = await rehearse({ assemblyDir: dir });

    expect(result.ok).toBe(false);
    // The function refuses the unsigned request itself (no verified caller): the first signed vend fails.
    expect(result.failures.join('\n')).toMatch(
      /Journey step "vend" failed: .*POST \/tokens \(REST API \w+, authorization NONE, function tokens\) answered 403/s,
    );
  }, 120_000);
});
