import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** The API's OpenAPI 3.1 document: every route, body, header and error of the deployed API. */
export const OPENAPI_DOCUMENT_PATH = fileURLToPath(new URL('../docs/openapi.json', import.meta.url));

/** The document as the local gateway serves it at `GET /openapi.json`, with the gateway as its server. */
export async function openApiDocumentFor(gatewayUrl: string): Promise<Record<string, unknown>> {
  const document = JSON.parse(await readFile(OPENAPI_DOCUMENT_PATH, 'utf8')) as Record<string, unknown>;
  return { ...document, servers: [{ url: gatewayUrl, description: 'this local broker' }] };
}
