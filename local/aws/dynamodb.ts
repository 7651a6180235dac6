import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { closeServer, DEFAULT_HOST, listen } from './http-server.ts';
import { makePrivate } from './private-files.ts';

/** The part of dynalite's options this module sets (dynalite ships no type declarations). */
interface DynaliteOptions {
  path?: string;
  createTableMs: number;
  deleteTableMs: number;
  updateTableMs: number;
}

const dynalite = createRequire(import.meta.url)('dynalite') as (options: DynaliteOptions) => Server;

/** Options for {@link startEmbeddedDynamoDb}. */
export interface EmbeddedDynamoDbOptions {
  /** Interface to bind; `127.0.0.1` by default. */
  host?: string;
  /** Port to bind; `0` (the default) picks a free one. */
  port?: number;
  /** Folder for the LevelDB files (created if missing); `null` or absent keeps everything in memory. */
  dataDir?: string | null;
}

/** A running embedded DynamoDB. */
export interface EmbeddedDynamoDb {
  /** The URL to pass as the `endpoint` of a `DynamoDBClient`. */
  endpoint: string;
  /** Stops the server and closes the store; calling it again does nothing more. */
  close(): Promise<void>;
}

/**
 * Runs dynalite, an implementation of the DynamoDB wire protocol, inside this process, so the real
 * `@aws-sdk/client-dynamodb` can talk to it through its `endpoint` option.
 *
 * Tables become ACTIVE almost at once (AWS takes seconds), but a table is still CREATING for a
 * moment after `CreateTable` returns: wait for it as against AWS (`waitUntilTableExists`).
 * dynalite does not implement transactions or `UpdateTimeToLive`; see `local/aws/README.md`.
 */
export async function startEmbeddedDynamoDb(
  options: EmbeddedDynamoDbOptions = {},
): Promise<EmbeddedDynamoDb> {
  const dynaliteOptions: DynaliteOptions = { createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 };
  if (options.dataDir) {
    dynaliteOptions.path = resolve(options.dataDir);
    makePrivate(dynaliteOptions.path);
  }
  const dataPath = dynaliteOptions.path;
  const server = dynalite(dynaliteOptions);
  const endpoint = await listen(server, options.host ?? DEFAULT_HOST, options.port ?? 0);
  let closing: Promise<void> | undefined;
  return {
    endpoint,
    close: () => {
      // LevelDB wrote its files with the default mode; the folder kept them private until now.
      closing ??= closeServer(server).then(() => {
        if (dataPath !== undefined) makePrivate(dataPath);
      });
      return closing;
    },
  };
}
