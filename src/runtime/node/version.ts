import { readFileSync } from 'node:fs';

/** package.json's version: dist/runtime/node/ and src/runtime/node/ are both three levels below it. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
