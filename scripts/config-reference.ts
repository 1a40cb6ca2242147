/**
 * The options reference of docs/configuration.md, generated from the zod schemas of src/core/config.ts (the ones the
 * CLI parses with): every command, flag, `PXECACHE_*` variable, default and description.
 * test/unit/core/config-doc.test.ts fails when the guide differs; `npm run docs:config` prints the part to paste
 * between the guide's markers.
 */
import { optionSpecs } from '../src/cli/args.js';
import { commandOperands, commands, type CommandName } from '../src/core/config.js';

export const REFERENCE_START = '<!-- config-reference:start (generated: npm run docs:config) -->';
export const REFERENCE_END = '<!-- config-reference:end -->';

/** Markdown-safe cell text: `|` would end the cell, `<name>` would be read as an HTML tag, `*` as emphasis. */
const cell = (text: string) => text.replace(/[|<>*]/g, '\\$&');

/** The value an unset option takes (`true`, `30`, `info`), "required", or "none" / "empty". */
function defaultOf(command: CommandName, flag: string, required: boolean): string {
  if (required) return 'required';
  const field = (
    commands[command].shape as Record<string, { safeParse(v: unknown): { success: boolean; data?: unknown } }>
  )[flag];
  const parsed = field?.safeParse(undefined);
  const value = parsed?.success ? parsed.data : undefined;
  if (value === undefined) return 'none';
  if (value === '') return 'empty';
  return `\`${String(value)}\``;
}

function usage(command: CommandName): string {
  const operands = (commandOperands[command] ?? []).map((o) =>
    o.endsWith('...') ? ` [<${o.slice(0, -3)}>...]` : ` <${o}>`,
  );
  return `\`pxecache ${command}${operands.join('')} [options]\``;
}

export function configReference(): string {
  const sections = (Object.keys(commands) as CommandName[]).map((command) => {
    const rows = optionSpecs(commands[command]).map((s) => {
      const flag = s.boolean ? `\`--${s.flag}\`, \`--no-${s.flag}\`` : `\`--${s.flag}\``;
      return `| ${flag} | \`${s.env}\` | ${defaultOf(command, s.flag, s.required)} | ${cell(s.description)} |`;
    });
    const operands = commandOperands[command] ?? [];
    const note = operands.length
      ? `\n\nOperands fill ${operands.map((o) => `\`--${o.replace(/\.\.\.$/, '')}\``).join(', ')}, in order.`
      : '';
    return [
      `### pxecache ${command}`,
      '',
      `${usage(command)}${note}`,
      '',
      '| flag | variable | default | meaning |',
      '|---|---|---|---|',
      ...rows,
    ].join('\n');
  });
  return sections.join('\n\n');
}
