import type { ZodObject } from 'zod';
import { ConfigError } from '../core/errors.js';
import { envName } from '../core/config.js';

export interface OptionSpec {
  readonly flag: string;
  readonly env: string;
  readonly description: string;
  readonly defaultValue: unknown;
  readonly boolean: boolean;
  readonly required: boolean;
}

/**
 * Commands that take operands (`pxecache rollback <name>`): each operand fills the option of that name, in order, so
 * `pxecache rollback boot/x` and `pxecache rollback --target boot/x` are the same and help lists it once. A last
 * operand written `names...` takes every remaining argument, as an array.
 */
export type Operands = readonly string[];

/** Flags, env names, defaults and descriptions, read off the zod schema so help and parsing cannot drift. */
export function optionSpecs(schema: ZodObject): OptionSpec[] {
  return Object.entries(schema.shape).map(([flag, field]) => {
    const def = (field as { def: { type: string; defaultValue?: unknown } }).def;
    return {
      flag,
      env: envName(flag),
      description: (field as { description?: string }).description ?? '',
      defaultValue: def.defaultValue,
      boolean: typeof def.defaultValue === 'boolean',
      required: def.type !== 'default' && def.type !== 'optional',
    };
  });
}

/**
 * `--flag value`, `--flag=value`, bare `--flag` for booleans (and `--no-flag`); then `PXECACHE_*` for what the command
 * line left out. Unknown flags and stray arguments are errors naming the flag.
 */
export function collectOptions(
  specs: readonly OptionSpec[],
  argv: readonly string[],
  env: Record<string, string | undefined>,
  operands: Operands = [],
): Record<string, unknown> {
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const out: Record<string, unknown> = {};
  const issues: string[] = [];
  let operand = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) {
      const spec = operands[operand] ?? '';
      if (spec.endsWith('...')) {
        const flag = spec.slice(0, -3);
        if (out[flag] !== undefined && !Array.isArray(out[flag]))
          issues.push(`--${flag}: given twice (as arguments and as --${flag})`);
        else out[flag] = [...((out[flag] as string[] | undefined) ?? []), arg];
        continue;
      }
      const flag = operands[operand++];
      if (flag === undefined) issues.push(`unexpected argument "${arg}"`);
      else if (out[flag] !== undefined) issues.push(`--${flag}: given twice (as an argument and as --${flag})`);
      else out[flag] = arg;
      continue;
    }
    const eq = arg.indexOf('=');
    let flag = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    let value: unknown = eq === -1 ? undefined : arg.slice(eq + 1);
    if (!byFlag.has(flag) && flag.startsWith('no-') && byFlag.get(flag.slice(3))?.boolean && value === undefined) {
      flag = flag.slice(3);
      value = false;
    }
    const spec = byFlag.get(flag);
    if (!spec) {
      issues.push(`--${flag}: unknown option (see --help)`);
      continue;
    }
    if (value === undefined) {
      const next = argv[i + 1];
      if (spec.boolean) value = true;
      else if (next === undefined || next.startsWith('--')) {
        issues.push(`--${flag}: needs a value`);
        continue;
      } else {
        value = next;
        i++;
      }
    }
    if (out[flag] !== undefined && (operands.includes(flag) || operands.includes(`${flag}...`))) {
      issues.push(`--${flag}: given twice (as an argument and as --${flag})`);
      continue;
    }
    out[flag] = value;
  }
  if (issues.length) throw new ConfigError(issues);
  for (const spec of specs) {
    const fromEnv = env[spec.env];
    if (out[spec.flag] === undefined && fromEnv !== undefined && fromEnv !== '') out[spec.flag] = fromEnv;
  }
  return out;
}

export function helpText(
  command: string,
  summary: string,
  specs: readonly OptionSpec[],
  operands: Operands = [],
): string {
  const lines = [
    `usage: pxecache ${command}${operands.map((o) => (o.endsWith('...') ? ` [<${o.slice(0, -3)}>...]` : ` <${o}>`)).join('')} [options]`,
    '',
    summary,
    '',
    'options (each also as an environment variable):',
  ];
  for (const s of specs) {
    const value = s.boolean ? ` | --no-${s.flag}` : ' <value>';
    const def = s.required
      ? ' (required)'
      : s.defaultValue !== undefined && s.defaultValue !== ''
        ? ` (default: ${String(s.defaultValue)})`
        : '';
    lines.push(`  --${s.flag}${value}`.padEnd(30) + ` ${s.description}${def}`, `${''.padEnd(31)}[${s.env}]`);
  }
  return lines.join('\n');
}
