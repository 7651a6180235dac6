import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A copy of a synthesized assembly at `dir` whose templates `change` edits, as a deployer's mistake would. */
export function changedAssemblyCopy<T>(
  assemblyDir: string,
  dir: string,
  change: (templates: T[]) => void,
): string {
  cpSync(assemblyDir, dir, { recursive: true });
  const files = readdirSync(dir).filter((file) => file.endsWith('.template.json'));
  const templates = files.map((file) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as T);
  change(templates);
  files.forEach((file, index) => {
    writeFileSync(join(dir, file), JSON.stringify(templates[index]));
  });
  return dir;
}
