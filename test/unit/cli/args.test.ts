import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { collectOptions, helpText, optionSpecs } from '../../../src/cli/args.js';
import { issuesOf } from '../../helpers/config-issues.js';

const schema = z.object({
  target: z.string().describe('name or prefix'),
  to: z.string().optional().describe('version'),
  'dry-run': z.coerce.boolean().default(false).describe('show only'),
});
const specs = optionSpecs(schema);

describe('collectOptions with operands', () => {
  it('fills the operand options in order, wherever flags stand', () => {
    expect(collectOptions(specs, ['--to', 'abc', 'boot/x'], {}, ['target'])).toEqual({ to: 'abc', target: 'boot/x' });
    expect(collectOptions(specs, ['boot/x', '--dry-run'], {}, ['target'])).toEqual({
      target: 'boot/x',
      'dry-run': true,
    });
  });

  it('takes the operand as a flag too, but not both', () => {
    expect(collectOptions(specs, ['--target', 'boot/x'], {}, ['target'])).toEqual({ target: 'boot/x' });
    expect(issuesOf(() => collectOptions(specs, ['boot/x', '--target', 'boot/y'], {}, ['target']))).toEqual([
      '--target: given twice (as an argument and as --target)',
    ]);
  });

  it('refuses arguments beyond the operands, naming them', () => {
    expect(issuesOf(() => collectOptions(specs, ['boot/x', 'boot/y'], {}, ['target']))).toEqual([
      'unexpected argument "boot/y"',
    ]);
    expect(issuesOf(() => collectOptions(specs, ['boot/x'], {}))).toEqual(['unexpected argument "boot/x"']);
  });

  it('collects the remaining arguments into a variadic last operand', () => {
    const names = optionSpecs(z.object({ names: z.array(z.string()).optional(), out: z.string() }));
    expect(collectOptions(names, ['a', '--out', 'f', 'b'], {}, ['names...'])).toEqual({ names: ['a', 'b'], out: 'f' });
    expect(issuesOf(() => collectOptions(names, ['a', '--names', 'b'], {}, ['names...']))).toEqual([
      '--names: given twice (as an argument and as --names)',
    ]);
    expect(helpText('export', 'Export.', names, ['names...']).split('\n')[0]).toBe(
      'usage: pxecache export [<names>...] [options]',
    );
  });

  it('shows operands in the usage line', () => {
    expect(helpText('rollback', 'Roll back.', specs, ['target']).split('\n')[0]).toBe(
      'usage: pxecache rollback <target> [options]',
    );
  });
});
