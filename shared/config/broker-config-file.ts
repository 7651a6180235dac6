import { readFileSync } from 'node:fs';
import { type BrokerConfig, ConfigurationError, parseBrokerConfig } from './broker-config.ts';

/**
 * Parses JSON text, turning a syntax error into a {@link ConfigurationError} that says where the error
 * is but not what the text says there (a configuration's `local` section may hold credentials).
 */
export function parseConfigurationJson(text: string, source: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const detail = error instanceof Error ? error.message : '';
    const lineAndColumn = /line (\d+) column (\d+)/.exec(detail);
    const position = /position (\d+)/.exec(detail);
    const where = lineAndColumn
      ? ` at line ${lineAndColumn[1]}, column ${lineAndColumn[2]}`
      : position
        ? ` at character ${position[1]}`
        : '';
    throw new ConfigurationError(
      source,
      [{ path: '', message: `is not valid JSON${where}: fix the syntax (quotes, commas, brackets)` }],
      { cause: error },
    );
  }
}

/**
 * Reads and validates a configuration file (the CDK app's `-c configFile=...`, the local run's
 * `--config`).
 *
 * @throws ConfigurationError when the file cannot be read, is not JSON or is not a valid configuration
 */
export function readBrokerConfigFile(path: string): BrokerConfig {
  return parseBrokerConfig(readConfigurationJson(path), path);
}

/**
 * Reads a configuration file as JSON, without validating it.
 *
 * @throws ConfigurationError when the file cannot be read or is not JSON
 */
export function readConfigurationJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigurationError(
      path,
      [
        {
          path: '',
          message: `cannot be read (${code}): check the path, which is relative to the current directory`,
        },
      ],
      { cause: error },
    );
  }
  return parseConfigurationJson(text, path);
}
