/**
 * `npm run bench`: runs every benchmark in bench/ (each exports `main()` and prints its figures).
 * Benchmarks measure; they never assert. `npm run bench -- state` runs only the matching ones.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

async function run(): Promise<void> {
  const filter = process.argv.slice(2);
  const files = readdirSync(__dirname)
    .filter((f) => f.endsWith('.ts') && f !== 'run.ts')
    .filter((f) => filter.length === 0 || filter.some((word) => f.includes(word)))
    .sort();
  for (const file of files) {
    const mod = (await import(join(__dirname, file))) as { main?: () => Promise<void> };
    if (typeof mod.main !== 'function') continue;
    console.log(`\n== ${file}`);
    await mod.main();
  }
}

run().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
