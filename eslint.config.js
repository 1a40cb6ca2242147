import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const nodeOnly = {
  patterns: [
    {
      group: ['node:*'],
      message: 'core/ and http/ run on Workers and Lambda: inject Node capabilities from an adapter.',
    },
    {
      group: ['undici', '@hono/node-server', '@aws-sdk/*'],
      message: 'runtime-specific clients belong in runtime/ or storage/ and are injected.',
    },
  ],
};

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'dist-bench/**',
      'dist-workers/**',
      'node_modules/**',
      'coverage/**',
      'test-artifacts/**',
      '**/cdk.out/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['src/core/**/*.ts', 'src/http/**/*.ts', 'src/http/**/*.tsx'],
    rules: {
      'no-restricted-imports': ['error', nodeOnly],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'core/ never reads process: adapters parse config.' },
      ],
    },
  },
);
