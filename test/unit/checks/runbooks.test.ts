/** Reports link the runbooks by file name: every one they can link exists and says what a person does. */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RUNBOOKS } from '../../../src/lib/checks/report';

const DIR = join(__dirname, '../../../docs/runbooks');

describe('runbooks', () => {
  it.each(Object.values(RUNBOOKS))(
    '%s exists, says what the app does and the steps, and is indexed',
    async (file) => {
      // Act
      const text = await readFile(join(DIR, file), 'utf8');
      const index = await readFile(join(DIR, 'README.md'), 'utf8');

      // Assess
      expect(text).toMatch(/^## What stampkeeper does/m);
      expect(text).toMatch(/^## .*[Ss]teps|^## .*restore/m);
      expect(text).toMatch(/^1\. /m);
      expect(index).toContain(`(${file})`);
    },
  );
});
