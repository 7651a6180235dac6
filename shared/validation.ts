/**
 * The validator of everything the deployed functions read from outside: request bodies and queries, Wise's
 * answers, the Wise credentials secret, log subscription events. It is zod's `zod/mini`, the same package
 * and version as `zod` with the same messages, whose functions a bundle takes one by one (the full `zod`
 * build adds about 460 KB to every bundle that imports it). The configuration schema, read at synth and by
 * the local run, keeps the full build.
 */
import { en } from 'zod/locales';
import { config } from 'zod/mini';

// zod's English messages, which `zod` sets when imported and `zod/mini` leaves to the application.
config(en());

// Re-exported name by name (not as one namespace object), so a bundle keeps only the functions it calls.
export * from 'zod/mini';
