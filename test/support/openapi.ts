import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { OPENAPI_DOCUMENT_PATH } from '#local/openapi-document.ts';

/** Routes the local gateway serves that the deployed API does not have, so the document leaves them out. */
export const LOCAL_ONLY_ROUTES: ReadonlySet<string> = new Set(['GET /health', 'GET /openapi.json']);

/** One response as a test received it. */
export interface ContractExchange {
  method: string;
  /** The route's template path, such as `/connections/{id}`; `-` when the gateway matched no route. */
  route: string;
  status: number;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body: string;
}

interface ResponseObject {
  headers?: Record<string, { required?: boolean; schema?: object; $ref?: string }>;
  content?: Record<string, { schema?: object }>;
  $ref?: string;
}

interface OpenApiDocument {
  paths: Record<string, Record<string, { responses: Record<string, ResponseObject> }>>;
  components: { schemas: Record<string, object> } & Record<string, Record<string, unknown>>;
}

const SCHEMAS_ID = 'openapi-schemas';

/** The API document, read once. */
export const openApiDocument = JSON.parse(readFileSync(OPENAPI_DOCUMENT_PATH, 'utf8')) as OpenApiDocument;

/** The document's own `#/components/schemas/...` references, pointed at the schemas Ajv holds. */
function localRefs(schema: object): object {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', `"${SCHEMAS_ID}#/$defs/`));
}

const ajv = new Ajv2020({ strict: true, allErrors: true });
addFormats.default(ajv);
ajv.addSchema({ $id: SCHEMAS_ID, $defs: localRefs(openApiDocument.components.schemas) });
const compiled = new Map<object, ValidateFunction>();

function validator(schema: object): ValidateFunction {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv.compile(localRefs(schema));
    compiled.set(schema, validate);
  }
  return validate;
}

/** Follows a `#/components/...` reference of the document. */
function resolved<T extends { $ref?: string }>(value: T): T {
  if (value.$ref === undefined) return value;
  const [, , section, name] = value.$ref.split('/');
  return resolved(openApiDocument.components[section ?? '']?.[name ?? ''] as T);
}

/**
 * What in a response the API document does not allow: an undocumented route or status, a missing
 * required header, a content type or a body its schema refuses. Empty when the response fits.
 */
export function contractViolations(exchange: ContractExchange): string[] {
  const key = `${exchange.method} ${exchange.route}`;
  if (exchange.route === '-' || LOCAL_ONLY_ROUTES.has(key)) return [];
  const operation = openApiDocument.paths[exchange.route]?.[exchange.method.toLowerCase()];
  if (!operation) return [`${key} answered, but docs/openapi.json does not document this route.`];
  const documented = operation.responses[String(exchange.status)];
  if (!documented) {
    return [`${key} answered ${exchange.status}, which docs/openapi.json does not list for this route.`];
  }
  const response = resolved(documented);
  const where = `${key} ${exchange.status}`;
  const violations: string[] = [];
  for (const [name, header] of Object.entries(response.headers ?? {})) {
    const spec = resolved(header);
    const value = exchange.headers[name.toLowerCase()];
    if (value === undefined) {
      if (spec.required) violations.push(`${where}: the required header ${name} is missing.`);
    } else if (spec.schema && !validator(spec.schema)(value)) {
      violations.push(`${where}: the header ${name} does not fit its schema.`);
    }
  }
  const mediaType = (exchange.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
  if (!response.content) {
    if (exchange.body !== '') violations.push(`${where}: a body came where the document lists none.`);
    return violations;
  }
  const content = response.content[mediaType];
  if (!content) {
    violations.push(`${where}: content type "${mediaType}" is not one the document lists.`);
    return violations;
  }
  if (content.schema && mediaType === 'application/json') {
    let body: unknown;
    try {
      body = JSON.parse(exchange.body);
    } catch {
      return [...violations, `${where}: the body is not JSON.`];
    }
    const validate = validator(content.schema);
    if (!validate(body)) {
      // Field paths and rules only: the body itself may hold a token.
      const problems = (validate.errors ?? []).map((error) => {
        const extra =
          'additionalProperty' in error.params ? ` ("${String(error.params.additionalProperty)}")` : '';
        return `${error.instancePath || '/'} ${error.message}${extra}`;
      });
      violations.push(`${where}: the body does not fit the document: ${problems.join('; ')}.`);
    }
  }
  return violations;
}

/** Throws with every violation when a response does not fit the API document. */
export function assertFitsContract(exchange: ContractExchange): void {
  const violations = contractViolations(exchange);
  if (violations.length > 0) throw new Error(violations.join('\n'));
}
