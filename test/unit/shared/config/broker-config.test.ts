import { describe, expect, it } from 'vitest';
import {
  type BrokerConfigInput,
  ConfigurationError,
  connectionPatternMatches,
  parseBrokerConfig,
  WISE_HOSTS,
} from '#shared/config/broker-config.ts';
import { BrokerError } from '#shared/domain/errors.ts';

const payments = 'arn:aws:iam::123456789012:role/payments';

function problemsOf(input: unknown): Record<string, string> {
  try {
    parseBrokerConfig(input, 'test.json');
  } catch (error) {
    if (error instanceof ConfigurationError) {
      const problems: Record<string, string> = {};
      for (const { path, message } of error.problems) {
        problems[path] = problems[path] === undefined ? message : `${problems[path]}; ${message}`;
      }
      return problems;
    }
    throw error;
  }
  throw new Error('the configuration was accepted');
}

describe('parseBrokerConfig', () => {
  it('fills every default into an empty configuration', () => {
    const config = parseBrokerConfig({}, 'test.json');

    expect(config).toEqual({
      stage: 'dev',
      wise: {
        environment: 'sandbox',
        apiUrl: 'https://api.wise-sandbox.com',
        authorizeUrl: 'https://wise-sandbox.com/oauth/authorize/',
        versionPrefix: '',
        mtls: false,
        pkce: false,
      },
      callers: [],
      returnUrls: [],
      connectWithoutConfirmation: false,
      refresh: {
        fraction: 0.8,
        sweepSeconds: 60,
        shards: 4,
        concurrency: 8,
        leaseSeconds: 120,
        tokenCallsPerMinute: 1000,
        atRiskShare: 0.1,
      },
      api: { throttle: { rateLimit: 100, burstLimit: 200 } },
      functions: { memorySize: 512, memorySizes: {}, sourceMaps: false },
      audit: { retentionDays: 365 },
      brand: { languages: ['en'] },
      removalPolicy: 'retain',
    });
  });

  it('keeps a complete configuration as written', () => {
    const input = {
      stage: 'prod',
      wise: {
        environment: 'production',
        apiUrl: 'https://api.transferwise.com',
        authorizeUrl: 'https://transferwise.com/oauth/authorize/',
        versionPrefix: '/2026Q3',
        mtls: false,
        pkce: true,
      },
      redirectUri: 'https://broker.example.com/oauth/callback',
      callers: [
        {
          principal: payments,
          use: ['acme-*'],
          administer: ['acme-*'],
          import: ['acme-*'],
          clientToken: true,
        },
      ],
      returnUrls: ['https://app.example.com/wise/done'],
      connectWithoutConfirmation: true,
      refresh: {
        fraction: 0.5,
        sweepSeconds: 120,
        shards: 16,
        concurrency: 50,
        leaseSeconds: 900,
        tokenCallsPerMinute: 3000,
        atRiskShare: 0.2,
      },
      api: { throttle: { rateLimit: 1000, burstLimit: 2000 } },
      functions: { memorySize: 1024, memorySizes: { tokens: 2048 }, sourceMaps: true },
      audit: { retentionDays: 731 },
      brand: { name: 'Acme', supportUrl: 'https://acme.example/help', languages: ['de', 'en'] },
      alarmEmail: 'ops@example.com',
      removalPolicy: 'destroy',
      env: { account: '123456789012', region: 'eu-west-1' },
      local: { port: 8080, anything: { goes: true } },
    } satisfies BrokerConfigInput;

    expect(parseBrokerConfig(input, 'test.json')).toEqual(input);
  });

  it('gives the same configuration when its own output is parsed again', () => {
    const once = parseBrokerConfig(
      {
        wise: { environment: 'production', mtls: true, versionPrefix: '2026Q3' },
        callers: [{ principal: payments, clientToken: true }],
      },
      'test.json',
    );

    expect(parseBrokerConfig(JSON.parse(JSON.stringify(once)), 'BROKER_CONFIG')).toEqual(once);
  });

  describe('Wise hosts', () => {
    it.each([
      ['sandbox', false, WISE_HOSTS.sandbox.apiUrl, 'https://api.wise-sandbox.com'],
      ['sandbox', true, WISE_HOSTS.sandbox.mtlsApiUrl, 'https://api-mtls.wise-sandbox.com'],
      ['production', false, WISE_HOSTS.production.apiUrl, 'https://api.wise.com'],
      ['production', true, WISE_HOSTS.production.mtlsApiUrl, 'https://api-mtls.transferwise.com'],
    ] as const)(
      'uses the %s API host (mtls %s) from the host table',
      (environment, mtls, fromTable, expected) => {
        const config = parseBrokerConfig({ wise: { environment, mtls } }, 'test.json');

        expect(config.wise.apiUrl).toBe(fromTable);
        expect(config.wise.apiUrl).toBe(expected);
      },
    );

    it('uses the authorization page of the chosen environment', () => {
      expect(parseBrokerConfig({ wise: { environment: 'production' } }, 'x').wise.authorizeUrl).toBe(
        'https://wise.com/oauth/authorize/',
      );
      expect(parseBrokerConfig({ wise: { environment: 'sandbox' } }, 'x').wise.authorizeUrl).toBe(
        'https://wise-sandbox.com/oauth/authorize/',
      );
    });

    it('lets explicit URLs for older hosts override the defaults, without a trailing slash on the API', () => {
      const config = parseBrokerConfig(
        {
          wise: {
            environment: 'sandbox',
            apiUrl: 'https://api.sandbox.transferwise.tech/',
            authorizeUrl: 'https://sandbox.transferwise.tech/oauth/authorize',
            mtls: true,
          },
        },
        'test.json',
      );

      expect(config.wise.apiUrl).toBe('https://api.sandbox.transferwise.tech');
      expect(config.wise.authorizeUrl).toBe('https://sandbox.transferwise.tech/oauth/authorize');
    });

    it.each([
      ['', ''],
      ['2026Q3', '/2026Q3'],
      ['/2026Q3/', '/2026Q3'],
      ['/v/2026Q3', '/v/2026Q3'],
    ])('writes the version prefix %j as %j', (written, expected) => {
      expect(parseBrokerConfig({ wise: { versionPrefix: written } }, 'x').wise.versionPrefix).toBe(expected);
    });

    it('keeps a configured client id, and leaves it out when none is given', () => {
      expect(parseBrokerConfig({ wise: { clientId: 'partner-42' } }, 'x').wise.clientId).toBe('partner-42');
      expect(parseBrokerConfig({}, 'x').wise).not.toHaveProperty('clientId');
    });

    it('refuses a client id with white space, naming the field', () => {
      expect(problemsOf({ wise: { clientId: 'partner 42' } })['wise.clientId']).toContain('client id');
    });

    it('accepts http only for a local Wise (the simulator)', () => {
      const local = parseBrokerConfig(
        { wise: { apiUrl: 'http://127.0.0.1:4010', authorizeUrl: 'http://localhost:4010/oauth/authorize/' } },
        'x',
      );

      expect(local.wise.apiUrl).toBe('http://127.0.0.1:4010');
      expect(problemsOf({ wise: { apiUrl: 'http://api.wise.com' } })['wise.apiUrl']).toMatch(/https:\/\//);
    });
  });

  describe('caller policy', () => {
    it('defaults a caller to no client token and no administration', () => {
      const config = parseBrokerConfig({ callers: [{ principal: payments, use: ['acme-*'] }] }, 'x');

      expect(config.callers).toEqual([
        { principal: payments, use: ['acme-*'], administer: [], import: [], clientToken: false },
      ]);
    });

    it.each([
      'arn:aws:iam::123456789012:role/payments',
      'arn:aws:iam::123456789012:role/service-role/payments.eu_1',
      'arn:aws:iam::123456789012:user/ci-bot',
      'arn:aws-us-gov:iam::123456789012:role/payments',
    ])('accepts the principal %s', (principal) => {
      expect(
        parseBrokerConfig({ callers: [{ principal, clientToken: true }] }, 'x').callers[0]?.principal,
      ).toBe(principal);
    });

    it.each([
      'arn:aws:sts::123456789012:assumed-role/payments/session',
      'arn:aws:iam::12345678901:role/payments',
      'arn:aws:iam::123456789012:group/payments',
      'arn:aws:iam::123456789012:role/',
      'arn:aws:iam::123456789012:role/payments/',
      'arn:aws:iam::123456789012:role//payments',
      'payments',
    ])('rejects the principal %s with an example of a good one', (principal) => {
      expect(problemsOf({ callers: [{ principal, clientToken: true }] })['callers[0].principal']).toContain(
        'arn:aws:iam::123456789012:role/payments',
      );
    });

    it.each(['acme-*', '*', 'a.b_c:d-*', 'exact-id', 'x'.repeat(128)])(
      'accepts the pattern %s in both grants',
      (pattern) => {
        const [caller] = parseBrokerConfig(
          { callers: [{ principal: payments, use: [pattern], administer: [pattern] }] },
          'x',
        ).callers;

        expect(caller).toMatchObject({ use: [pattern], administer: [pattern] });
      },
    );

    it.each(['', 'has space', 'slash/no', 'x'.repeat(129), 'q?'])('rejects the pattern %j', (pattern) => {
      const problems = problemsOf({
        callers: [{ principal: payments, use: [pattern], administer: [pattern] }],
      });

      expect(problems['callers[0].use[0]']).toMatch(/for example "acme-\*"/);
      expect(problems['callers[0].administer[0]']).toMatch(/for example "acme-\*"/);
    });

    it('says what each grant is for when it is not a list', () => {
      const problems = problemsOf({
        callers: [{ principal: payments, use: 'acme-*', administer: true, import: 'acme-*' }],
      });

      expect(problems['callers[0].use']).toMatch(/vend the token of/);
      expect(problems['callers[0].administer']).toMatch(/list, read the status of or delete/);
      expect(problems['callers[0].import']).toMatch(/import an existing Wise authorization/);
    });

    it('rejects a caller that would be granted nothing', () => {
      expect(problemsOf({ callers: [{ principal: payments }] })['callers[0]']).toMatch(
        /grants nothing: give it connection patterns in "use" or "administer" or "import", set "clientToken"/,
      );
      expect(
        problemsOf({ callers: [{ principal: payments, use: [], administer: [] }] })['callers[0]'],
      ).toMatch(/grants nothing/);
    });

    it('keeps use and administration apart: an administering caller gets no use patterns', () => {
      const [operator] = parseBrokerConfig(
        { callers: [{ principal: payments, administer: ['*'] }] },
        'x',
      ).callers;

      expect(operator).toEqual({
        principal: payments,
        use: [],
        administer: ['*'],
        import: [],
        clientToken: false,
      });
    });

    it('accepts several entries for one principal', () => {
      const config = parseBrokerConfig(
        {
          callers: [
            { principal: payments, administer: ['acme-*'] },
            { principal: payments, use: ['acme-*'] },
          ],
        },
        'x',
      );

      expect(config.callers).toHaveLength(2);
    });

    it('refuses the earlier shape (connections and admin) and says how to move to the grants', () => {
      const problems = problemsOf({
        callers: [
          { principal: payments, connections: ['acme-*'], clientToken: true, admin: false },
          { principal: payments, connections: ['*'], admin: true },
        ],
      });

      for (const index of [0, 1]) {
        expect(problems[`callers[${index}].connections`]).toMatch(
          /is no longer a field.*Move these patterns to "use"/,
        );
        expect(problems[`callers[${index}].connections`]).toMatch(/"administer"/);
        expect(problems[`callers[${index}].admin`]).toMatch(/is no longer a field.*in "administer"/);
      }
      // Only the migration is reported, not also that the caller grants nothing.
      expect(Object.keys(problems).sort()).toEqual([
        'callers[0].admin',
        'callers[0].connections',
        'callers[1].admin',
        'callers[1].connections',
      ]);
    });
  });

  describe('refresh settings', () => {
    it.each([
      ['fraction', 0.49, /at least 0\.5/],
      ['fraction', 0.96, /at most 0\.95/],
      ['sweepSeconds', 30, /at least 60/],
      ['sweepSeconds', 90, /multiple of 60/],
      ['sweepSeconds', 3660, /at most 3600/],
      ['shards', 0, /at least 1/],
      ['shards', 17, /at most 16/],
      ['shards', 2.5, /whole number/],
      ['concurrency', 0, /at least 1/],
      ['concurrency', 51, /at most 50/],
      ['leaseSeconds', 29, /at least 30/],
      ['leaseSeconds', 901, /at most 900/],
      ['leaseSeconds', '120', /whole number of seconds/],
      ['atRiskShare', 0.005, /at least 0\.01/],
      ['atRiskShare', 0.6, /at most 0\.5/],
      ['atRiskShare', 0.2, /below 1 - fraction/],
    ])('rejects %s = %j', (field, value, message) => {
      expect(problemsOf({ refresh: { [field]: value } })[`refresh.${field}`]).toMatch(message);
    });

    it.each([
      ['fraction', 0.5],
      ['fraction', 0.95],
      ['sweepSeconds', 60],
      ['sweepSeconds', 3600],
      ['shards', 1],
      ['shards', 16],
      ['concurrency', 1],
      ['concurrency', 50],
      ['leaseSeconds', 30],
      ['leaseSeconds', 900],
      ['atRiskShare', 0.01],
      ['atRiskShare', 0.19],
    ])('accepts %s = %j at the edge of its range', (field, value) => {
      expect(parseBrokerConfig({ refresh: { [field]: value } }, 'x').refresh).toMatchObject({
        [field]: value,
      });
    });
  });

  describe('throttling and memory', () => {
    it('refuses throttling and memory sizes outside what API Gateway and Lambda take, saying why', () => {
      const problems = problemsOf({
        api: { throttle: { rateLimit: 0, burstLimit: 5001 } },
        functions: { memorySize: 64, memorySizes: { tokens: 20_000, 'Bad Name': 512 } },
      });

      expect(problems).toMatchObject({
        'api.throttle.rateLimit': 'must be at least 1',
        'api.throttle.burstLimit': "must be at most 5000, API Gateway's default account quota",
        'functions.memorySize': "must be at least 128, Lambda's smallest size",
        'functions.memorySizes.tokens': "must be at most 10240, Lambda's largest size",
      });
      expect(
        Object.entries(problems).some(
          ([path, message]) =>
            path.startsWith('functions.memorySizes') && message.includes('must name a broker function'),
        ),
      ).toBe(true);
    });
  });

  describe('source maps', () => {
    it('leaves source maps off unless asked', () => {
      expect(parseBrokerConfig({ functions: { memorySize: 1024 } }, 'x').functions.sourceMaps).toBe(false);
    });

    it.each(['true', 1, null])('refuses functions.sourceMaps = %j, saying what each value does', (value) => {
      expect(problemsOf({ functions: { sourceMaps: value } })).toEqual({
        'functions.sourceMaps':
          'must be true (stack traces name the source files, at the cost of reading the source map at every cold start) or false (positions in the minified index.mjs)',
      });
    });
  });

  it('puts the at-risk share below what a high refresh fraction leaves', () => {
    expect(parseBrokerConfig({ refresh: { fraction: 0.95 } }, 'x').refresh.atRiskShare).toBe(0.025);
  });

  it.each([30, 365, 3653])('accepts audit.retentionDays = %j, a period CloudWatch Logs offers', (days) => {
    expect(parseBrokerConfig({ audit: { retentionDays: days } }, 'x').audit.retentionDays).toBe(days);
  });

  it('rejects an audit.retentionDays CloudWatch Logs does not offer', () => {
    expect(problemsOf({ audit: { retentionDays: 100 } })['audit.retentionDays']).toMatch(
      /one of the retention periods CloudWatch Logs offers/,
    );
  });

  describe('other fields', () => {
    it.each(['a', 'prod', 'test-1', 'x'.repeat(20)])('accepts the stage %s', (stage) => {
      expect(parseBrokerConfig({ stage }, 'x').stage).toBe(stage);
    });

    it.each(['', 'Prod', 'under_score', 'x'.repeat(21), 'dot.ted'])('rejects the stage %j', (stage) => {
      expect(problemsOf({ stage }).stage).toMatch(/lowercase letters, digits or hyphens/);
    });

    it('rejects a redirect URI and return URLs that are not https', () => {
      const problems = problemsOf({
        redirectUri: 'http://broker.example.com/oauth/callback',
        returnUrls: [
          'https://ok.example.com/done',
          'ftp://files.example.com',
          'https://app.example.com/#frag',
        ],
      });

      expect(Object.keys(problems)).toEqual(['redirectUri', 'returnUrls[1]', 'returnUrls[2]']);
    });

    it('rejects an alarm e-mail that is not an address, a removal policy it does not know, and a bad env', () => {
      const problems = problemsOf({
        alarmEmail: 'ops-at-example',
        removalPolicy: 'snapshot',
        env: { account: '1234', region: 'Europe' },
      });

      expect(problems.alarmEmail).toMatch(/e-mail address/);
      expect(problems.removalPolicy).toMatch(/"retain".*"destroy"/);
      expect(problems['env.account']).toMatch(/12-digit/);
      expect(problems['env.region']).toMatch(/eu-west-1/);
    });

    it('rejects a misspelt field at any depth instead of ignoring it', () => {
      const problems = problemsOf({
        stages: 'prod',
        refresh: { sweepSecond: 60 },
        wise: { enviroment: 'sandbox' },
      });

      expect(problems).toEqual({
        stages: expect.stringMatching(/not a known field/),
        'refresh.sweepSecond': expect.stringMatching(/not a known field/),
        'wise.enviroment': expect.stringMatching(/not a known field/),
      });
    });

    it('keeps the local section open for the local run to validate', () => {
      const config = parseBrokerConfig({ local: { port: 8080, wise: { clientId: 'local' } } }, 'x');

      expect(config.local).toEqual({ port: 8080, wise: { clientId: 'local' } });
    });

    it('says a required field is missing rather than of the wrong type', () => {
      expect(problemsOf({ callers: [{ clientToken: true }] })['callers[0].principal']).toMatch(
        /^is required/,
      );
    });
  });

  describe('the error', () => {
    it('is a BrokerError that lists every bad field with its path, its fix and the source', () => {
      let caught: unknown;
      try {
        parseBrokerConfig({ stage: 'Bad Stage', refresh: { sweepSeconds: 90 } }, 'deploy/prod.json');
      } catch (error) {
        caught = error;
      }

      expect(caught).toBeInstanceOf(ConfigurationError);
      expect(caught).toBeInstanceOf(BrokerError);
      const message = (caught as Error).message;
      expect(message).toContain('deploy/prod.json');
      expect(message).toContain('  - stage: must be 1 to 20 lowercase letters, digits or hyphens');
      expect(message).toContain('  - refresh.sweepSeconds: must be a multiple of 60');
    });

    it('never repeats a value from the configuration', () => {
      const secretLooking = 'super-secret-value-123';
      let message = '';
      try {
        parseBrokerConfig({ stage: secretLooking, alarmEmail: secretLooking, local: secretLooking }, 'x');
      } catch (error) {
        message = (error as Error).message;
      }

      expect(message).not.toBe('');
      expect(message).not.toContain(secretLooking);
    });

    it('reports a configuration that is not an object at all', () => {
      expect(Object.keys(problemsOf('stage=prod'))).toEqual(['']);
    });
  });
});

describe('connectionPatternMatches', () => {
  it.each([
    ['acme-1', 'acme-1', true],
    ['acme-1', 'acme-12', false],
    ['acme-*', 'acme-', true],
    ['acme-*', 'acme-42', true],
    ['acme-*', 'acme', false],
    ['acme-*', 'beta-42', false],
    ['*', '', true],
    ['*', 'anything:at.all', true],
    ['*-eu', 'acme-eu', true],
    ['*-eu', 'acme-us', false],
    ['a*b*c', 'axxbyyc', true],
    ['a*b*c', 'axxbyy', false],
    ['a*b', 'ab', true],
    ['a*b', 'abc', false],
    ['a**b', 'a-b', true],
    ['*a*a*a*b', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', false],
  ])('pattern %j against %j is %s', (pattern, connectionId, expected) => {
    expect(connectionPatternMatches(pattern, connectionId)).toBe(expected);
  });

  it('treats every character but * literally', () => {
    expect(connectionPatternMatches('a.c', 'abc')).toBe(false);
    expect(connectionPatternMatches('a.c', 'a.c')).toBe(true);
    expect(connectionPatternMatches('acme:*', 'acme:1')).toBe(true);
  });

  it('is case-sensitive', () => {
    expect(connectionPatternMatches('Acme-*', 'acme-1')).toBe(false);
  });
});

describe('the brand of the connect pages', () => {
  it('is unbranded and English when left out', () => {
    expect(parseBrokerConfig({}, 'test.json').brand).toEqual({ languages: ['en'] });
  });

  it('keeps a name, an https logo, a support link and the offered languages in order', () => {
    const brand = {
      name: 'Acme Payments',
      logo: 'https://cdn.acme.example/brand/logo.svg',
      supportUrl: 'mailto:help@acme.example',
      languages: ['de', 'en'],
    };

    expect(parseBrokerConfig({ brand }, 'test.json').brand).toEqual(brand);
  });

  it('accepts a small inline logo as a base64 data URI', () => {
    const logo = `data:image/png;base64,${'A'.repeat(100)}`;

    expect(parseBrokerConfig({ brand: { logo } }, 'test.json').brand.logo).toBe(logo);
  });

  it.each([
    ['brand.name', { name: '' }, /must not be empty/],
    ['brand.name', { name: 'A'.repeat(61) }, /at most 60 characters/],
    ['brand.name', { name: 'Acme\u202EPay' }, /control or formatting characters/],
    ['brand.logo', { logo: 'http://cdn.acme.example/logo.png' }, /https:\/\/ URL of an image/],
    ['brand.logo', { logo: "https://cdn.acme.example/logo.png;'unsafe-inline'" }, /Content-Security-Policy/],
    ['brand.logo', { logo: 'https://cdn.acme.example/logo.png?v=2' }, /without a \?query/],
    [
      'brand.logo',
      { logo: 'data:text/html;base64,PHNjcmlwdD4=' },
      /data:image\/png, jpeg, gif, webp or svg\+xml/,
    ],
    [
      'brand.logo',
      { logo: `data:image/png;base64,${'A'.repeat(2100)}` },
      /at most 2048 characters when inline/,
    ],
    ['brand.supportUrl', { supportUrl: 'javascript:alert(1)' }, /https:\/\/ URL .* or a mailto: address/],
    ['brand.languages', { languages: [] }, /at least one language/],
    ['brand.languages', { languages: ['en', 'en'] }, /each language once/],
    [
      'brand.languages[1]',
      { languages: ['en', 'xx'] },
      /"en", "de" \(add one in shared\/http\/page-text\.ts\)/,
    ],
    ['brand.colour', { colour: '#fff' }, /not a known field/],
  ])('refuses %s in %j, saying what to write', (path, brand, message) => {
    expect(problemsOf({ brand })[path]).toMatch(message);
  });
});

describe('the custom domain', () => {
  const hostedZone = { id: 'Z0123456789ABCDEFGHIJ', name: 'Example.com.' };

  it('keeps the name and the zone, lower-cased and without the trailing dot', () => {
    const config = parseBrokerConfig({ domain: { name: 'Wise.Example.com', hostedZone } }, 'test.json');

    expect(config.domain).toEqual({
      name: 'wise.example.com',
      hostedZone: { id: 'Z0123456789ABCDEFGHIJ', name: 'example.com' },
    });
  });

  it('accepts a redirect URI on the domain itself', () => {
    const config = parseBrokerConfig(
      {
        domain: { name: 'wise.example.com', hostedZone },
        redirectUri: 'https://wise.example.com/oauth/callback',
      },
      'test.json',
    );

    expect(config.redirectUri).toBe('https://wise.example.com/oauth/callback');
  });

  it('refuses a certificate ARN that is not one, saying it may be left out', () => {
    expect(
      problemsOf({
        domain: { name: 'wise.example.com', hostedZone, certificateArn: 'arn:aws:iam::1:role/x' },
      })['domain.certificateArn'],
    ).toMatch(/leave it out to have one issued with DNS validation/);
  });
});
