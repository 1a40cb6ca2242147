/** `npm run docs:workers-vars`: the variables table of docs/deploy-workers.md, between its markers. */
import { TABLE_END, TABLE_START, workersVarsTable } from './workers-vars.js';

console.log([TABLE_START, workersVarsTable(), TABLE_END].join('\n'));
