/** A decoded JSON request body or a response body of the AWS JSON 1.1 protocol. */
export type JsonObject = Record<string, unknown>;

/** One operation of a service: takes the decoded request, answers the response body. */
export type Operation = (input: JsonObject) => JsonObject | Promise<JsonObject>;

/** A service behind the local endpoint: its `X-Amz-Target` prefix and its operations by name. */
export interface LocalService {
  readonly targetPrefix: string;
  readonly operations: ReadonlyMap<string, Operation>;
}

/** What a local service needs to name its ARNs and, optionally, to keep its state across restarts. */
export interface LocalServiceOptions {
  region: string;
  accountId: string;
  /** JSON file that keeps the service's state across restarts; in memory only when absent. */
  stateFile?: string | undefined;
}

/**
 * An error answered the way AWS answers it: `{"__type": type, "message": message}` with `statusCode`,
 * so the SDK raises its own exception class named `type`.
 */
export class AwsServiceError extends Error {
  readonly type: string;
  readonly statusCode: number;

  constructor(type: string, message: string, statusCode = 400) {
    super(message);
    this.name = 'AwsServiceError';
    this.type = type;
    this.statusCode = statusCode;
  }
}

/** A request that breaks a constraint of the service's model (AWS's `ValidationException`). */
export function validationError(field: string, constraint: string): AwsServiceError {
  const member = field.charAt(0).toLowerCase() + field.slice(1);
  return new AwsServiceError(
    'ValidationException',
    `1 validation error detected: Value at '${member}' failed to satisfy constraint: Member must ${constraint}`,
  );
}

interface Length {
  min?: number;
  max?: number;
}

/** Reads a string member; `undefined` when absent. */
export function optionalString(input: JsonObject, field: string, length: Length = {}): string | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw validationError(field, 'be a string');
  checkLength(field, value.length, length, 'characters');
  return value;
}

/** Reads a string member that must be present. */
export function requiredString(input: JsonObject, field: string, length: Length = {}): string {
  const value = optionalString(input, field, length);
  if (value === undefined) throw validationError(field, 'not be null');
  return value;
}

/** Reads a blob member, sent as base64 by the SDK; `undefined` when absent. */
export function optionalBlob(input: JsonObject, field: string, length: Length = {}): Buffer | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
    throw new AwsServiceError('SerializationException', `The member ${field} must be a base64-encoded blob.`);
  }
  const bytes = Buffer.from(value, 'base64');
  checkLength(field, bytes.length, length, 'bytes');
  return bytes;
}

/** Reads a blob member that must be present. */
export function requiredBlob(input: JsonObject, field: string, length: Length = {}): Buffer {
  const value = optionalBlob(input, field, length);
  if (value === undefined) throw validationError(field, 'not be null');
  return value;
}

/** Reads a map of strings to strings; `undefined` when absent. */
export function optionalStringMap(input: JsonObject, field: string): Record<string, string> | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (!isJsonObject(value) || !Object.values(value).every((entry) => typeof entry === 'string')) {
    throw validationError(field, 'be a map of strings to strings');
  }
  return value as Record<string, string>;
}

/** Reads a list of strings; `undefined` when absent. */
export function optionalStringList(
  input: JsonObject,
  field: string,
  length: Length = {},
): string[] | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((entry) => typeof entry === 'string')) {
    throw validationError(field, 'be a list of strings');
  }
  checkLength(field, value.length, length, 'entries');
  return value;
}

/** Reads a list of objects that must be present. */
export function requiredObjectList(input: JsonObject, field: string, length: Length = {}): JsonObject[] {
  const value = input[field];
  if (value === undefined || value === null) throw validationError(field, 'not be null');
  if (!Array.isArray(value) || !value.every(isJsonObject))
    throw validationError(field, 'be a list of objects');
  checkLength(field, value.length, length, 'entries');
  return value;
}

/** Reads an integer member; `undefined` when absent. */
export function optionalInteger(input: JsonObject, field: string, range: Length = {}): number | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw validationError(field, 'be an integer');
  if (range.min !== undefined && value < range.min) {
    throw validationError(field, `have value greater than or equal to ${range.min}`);
  }
  if (range.max !== undefined && value > range.max) {
    throw validationError(field, `have value less than or equal to ${range.max}`);
  }
  return value;
}

/** Reads a timestamp member, sent as epoch seconds by the SDK; `undefined` when absent. */
export function optionalTimestamp(input: JsonObject, field: string): Date | undefined {
  const value = input[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw validationError(field, 'be epoch seconds');
  return new Date(value * 1000);
}

/** A timestamp as the SDK expects it in a JSON 1.1 response: epoch seconds. */
export function epochSeconds(date: Date): number {
  return date.getTime() / 1000;
}

/** True for a plain JSON object (not an array, not null). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkLength(field: string, actual: number, length: Length, unit: string): void {
  if (length.min !== undefined && actual < length.min) {
    throw validationError(field, `have length greater than or equal to ${length.min} ${unit}`);
  }
  if (length.max !== undefined && actual > length.max) {
    throw validationError(field, `have length less than or equal to ${length.max} ${unit}`);
  }
}
