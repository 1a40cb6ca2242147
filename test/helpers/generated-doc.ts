import { readFileSync } from 'node:fs';
import { expect } from 'vitest';

/** A file of the repository, by its path from the root. */
export const readRepoFile = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/**
 * Checks that `guide`'s part between its markers is `expected` (a generated table), naming the command that
 * regenerates it when it is not.
 */
export function expectGeneratedPart(
  guide: string,
  markers: { start: string; end: string },
  expected: string,
  regenerate: string,
) {
  const text = readRepoFile(guide);
  const start = text.indexOf(markers.start);
  const end = text.indexOf(markers.end);
  expect(start, `${guide} lacks the marker ${markers.start}`).toBeGreaterThanOrEqual(0);
  expect(end, `${guide} lacks the marker ${markers.end} after the start marker`).toBeGreaterThan(start);
  const part = text.slice(start + markers.start.length, end).trim();
  expect(part, `${guide} is out of date: paste the output of "${regenerate}"`).toBe(expected);
}
