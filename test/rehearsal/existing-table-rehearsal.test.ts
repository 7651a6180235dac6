import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REHEARSAL_EXISTING_TABLE,
  type RehearsalResult,
  rehearse,
  synthesizeForRehearsal,
} from '../../rehearsal/rehearse.ts';
import { changedAssemblyCopy } from './support.ts';

type Template = { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };

const workDir = mkdtempSync(join(tmpdir(), 'rehearsal-existing-table-test-'));
const assemblyDir = join(workDir, 'cdk.out');

describe('the deployment rehearsal of a table restored from point-in-time recovery', () => {
  let passing: RehearsalResult;

  beforeAll(async () => {
    await synthesizeForRehearsal(assemblyDir, { existingTableName: REHEARSAL_EXISTING_TABLE });
    passing = await rehearse({ assemblyDir });
  }, 300_000);

  afterAll(() => {
    rmSync(workDir, { recursive: true, force: true });
  });

  it('runs the whole journey on the restored table, each call allowed on its ARN', () => {
    const tableCalls = passing.calls.filter((call) => call.action.startsWith('dynamodb:'));

    expect(passing.failures).toEqual([]);
    expect(passing.ok).toBe(true);
    expect(passing.journey.every((step) => step.ok)).toBe(true);
    expect(tableCalls.length).toBeGreaterThan(0);
    for (const call of tableCalls) {
      expect(call.resource).toMatch(new RegExp(`:table/${REHEARSAL_EXISTING_TABLE}(/index/[\\w-]+)?$`));
      expect(call.decision).toBe('Allowed');
    }
    expect(tableCalls.some((call) => call.context?.['dynamodb:LeadingKeys'] !== undefined)).toBe(true);
  });

  it('fails naming the denied table call when the policies still name the table before the restore', async () => {
    const dir = changedAssemblyCopy<Template>(assemblyDir, join(workDir, 'old-table'), (templates) => {
      for (const template of templates) {
        for (const resource of Object.values(template.Resources)) {
          if (resource.Type !== 'AWS::IAM::Policy') continue;
          resource.Properties = JSON.parse(
            JSON.stringify(resource.Properties).replaceAll(
              `table/${REHEARSAL_EXISTING_TABLE}`,
              'table/wise-broker-rehearsal-original',
            ),
          );
        }
      }
    });

    const result = await rehearse({ assemblyDir: dir });

    expect(result.ok).toBe(false);
    expect(result.failures.join('\n')).toMatch(
      new RegExp(
        `connect-sessions: dynamodb:PutItem on arn:aws:dynamodb:[\\w-]+:\\d{12}:table/${REHEARSAL_EXISTING_TABLE} is implicitly denied`,
      ),
    );
  }, 120_000);
});
