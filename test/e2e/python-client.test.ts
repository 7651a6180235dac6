import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalBroker } from '#local/local-broker.ts';
import { CALLER_KEYS, connectAtSimulator, startCallerBroker } from '../support/caller-broker.ts';

const run = promisify(execFile);

/** Debian's Python, which sees Debian's python3-botocore (`.ci/run` installs it). */
const DEBIAN_PYTHON = process.env.DEBIAN_PYTHON ?? '/usr/bin/python3';
const TESTS = 8;

let broker: LocalBroker;
let home: string;

beforeAll(async () => {
  await run(DEBIAN_PYTHON, ['-c', 'import botocore']).catch(() => {
    throw new Error(
      `${DEBIAN_PYTHON} cannot import botocore: install Debian's python3-botocore (apt-get install -y python3-botocore, as .ci/run does).`,
    );
  });
  home = mkdtempSync(join(tmpdir(), 'broker-python-'));
  broker = await startCallerBroker('the Python client test');
  await connectAtSimulator(broker, 'acme-python');
});

afterAll(async () => {
  await broker?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('the Python caller module', () => {
  it('passes its tests against the local broker with botocore signing from the default chain', async () => {
    const outcome = run(DEBIAN_PYTHON, ['-m', 'unittest', '-v', 'test_wise_token_broker'], {
      cwd: resolve('python-client'),
      env: {
        PATH: process.env.PATH ?? '',
        // An empty home: botocore reads no profile of the machine, only the keys below.
        HOME: home,
        AWS_ACCESS_KEY_ID: CALLER_KEYS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: CALLER_KEYS.secretAccessKey,
        AWS_EC2_METADATA_DISABLED: 'true',
        BROKER_URL: broker.url,
        WISE_URL: broker.simulator?.url ?? '',
        CONNECTION_ID: 'acme-python',
      },
    });

    // unittest reports on stderr; a failure rejects with the whole report.
    const { stderr } = await outcome;
    expect(stderr).toContain(`Ran ${TESTS} tests`);
    expect(stderr.trimEnd().endsWith('OK')).toBe(true);
  });
});
