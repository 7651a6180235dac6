import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REHEARSAL_DOMAIN,
  type RehearsalResult,
  rehearse,
  synthesizeForRehearsal,
} from '../../rehearsal/rehearse.ts';
import { changedAssemblyCopy } from './support.ts';

type Template = { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };

const workDir = mkdtempSync(join(tmpdir(), 'rehearsal-domain-test-'));
const assemblyDir = join(workDir, 'cdk.out');

/** A copy of the synthesized assembly whose templates `change` edits. */
function changedAssembly(name: string, change: (templates: Template[]) => void): string {
  return changedAssemblyCopy(assemblyDir, join(workDir, name), change);
}

describe('the deployment rehearsal of the custom-domain variant', () => {
  let passing: RehearsalResult;

  beforeAll(async () => {
    await synthesizeForRehearsal(assemblyDir, REHEARSAL_DOMAIN);
    passing = await rehearse({ assemblyDir });
  }, 300_000);

  afterAll(() => {
    rmSync(workDir, { recursive: true, force: true });
  });

  it('connects through start URLs and a callback on the custom domain, with no denial', () => {
    const { name } = REHEARSAL_DOMAIN.domain;

    expect(passing.failures).toEqual([]);
    expect(passing.ok).toBe(true);
    const connect = passing.journey.find((step) => step.name.startsWith('connect session'));
    expect(connect?.ok).toBe(true);
    expect(connect?.detail).toContain(`start URL on https://${name}, callback on https://${name}`);
    expect(passing.journey.every((step) => step.ok)).toBe(true);
  });

  it('fails naming the missing alias record when the domain does not resolve to the API', async () => {
    const dir = changedAssembly('record-removed', (templates) => {
      for (const template of templates) {
        for (const [id, resource] of Object.entries(template.Resources)) {
          if (resource.Type === 'AWS::Route53::RecordSet') delete template.Resources[id];
        }
      }
    });
    const result = await rehearse({ assemblyDir: dir });
    expect(result.ok).toBe(false);
    const failures = result.failures.join('\n');
    expect(failures).toMatch(
      /\(wise\.rehearsal\.example\.com\): no Route 53 A record aliases wise\.rehearsal\.example\.com to the custom domain's regional endpoint/,
    );
    expect(failures).toMatch(
      /REDIRECT_URI https:\/\/wise\.rehearsal\.example\.com\/oauth\/callback is neither/,
    );
  }, 120_000);
});
