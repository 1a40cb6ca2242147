/** `npm run docs:config`: the options reference of docs/configuration.md, between its markers. */
import { REFERENCE_END, REFERENCE_START, configReference } from './config-reference.js';

console.log([REFERENCE_START, configReference(), REFERENCE_END].join('\n'));
