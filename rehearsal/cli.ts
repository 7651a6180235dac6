// `npm run rehearse [-- --assembly DIR | --private | --custom-domain | --existing-table]`: rehearses the
// deployment, prints the report, writes it as JSON. `--private` synthesizes the private access variant (the
// IAM routes on a private REST API), `--custom-domain` the variant with its own domain and brand,
// `--existing-table` the variant that uses a table restored from point-in-time recovery.
import { parseArgs } from 'node:util';
import { rehearse } from './rehearse.ts';
import { formatReport, REPORT_FILE, writeReport } from './report.ts';

const { values } = parseArgs({
  options: {
    assembly: { type: 'string' },
    'keep-work-dir': { type: 'string' },
    private: { type: 'boolean' },
    'custom-domain': { type: 'boolean' },
    'existing-table': { type: 'boolean' },
  },
  strict: true,
});

const result = await rehearse({
  ...(values.assembly === undefined ? {} : { assemblyDir: values.assembly }),
  ...(values['keep-work-dir'] === undefined ? {} : { workDir: values['keep-work-dir'] }),
  ...(values.private ? { privateAccess: true } : {}),
  ...(values['custom-domain'] ? { customDomain: true } : {}),
  ...(values['existing-table'] ? { existingTable: true } : {}),
});
console.log(formatReport(result));
writeReport(result);
console.log(`\nReport written to ${REPORT_FILE}`);
process.exit(result.ok ? 0 : 1);
