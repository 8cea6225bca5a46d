import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const PACKAGE_FILES = { group: ['@infinitescribe/*/src/*'], message: 'import the package, not its files' };

/**
 * The server's layers, bottom up (docs/architecture.md): core -> adapters -> services -> routes ->
 * the plugin. A file may import its own layer and the ones below; an import that climbs is an error,
 * so the import cycles the layers replaced cannot come back.
 */
const SERVER = 'packages/server/src';
const LAYERS = ['core', 'adapters', 'services', 'routes'];
const layerRules = LAYERS.map((layer, index) => {
  const above = [...LAYERS.slice(index + 1), 'plugin'];
  return {
    files: [`${SERVER}/${layer}/**/*.{ts,tsx}`],
    // Tests may wire layers together (an adapter test drives the service that uses it).
    ignores: ['**/*.test.ts', '**/testing/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            PACKAGE_FILES,
            ...above.map((upper) => ({
              group: [`**/${upper}/**`, `**/${upper}.js`],
              message: `${layer} is below ${upper}: an import never climbs a layer (core -> adapters -> services -> routes -> plugin)`,
            })),
            { group: ['**/apps/**'], message: 'the server package never imports an app' },
          ],
        },
      ],
    },
  };
});

/** The publisher SDK runs in processes that never start the server: HTTP and the protocol only. */
const publisherRule = {
  files: [`${SERVER}/publisher/**/*.ts`],
  ignores: ['**/*.test.ts'],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          PACKAGE_FILES,
          {
            group: ['../*', '!../publisher/**'],
            message: 'the publisher SDK stands alone: it imports nothing of the server but its own folder',
          },
        ],
      },
    ],
  },
};

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', 'coverage/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,tsx}'],
    rules: {
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'max-params': ['error', 4],
      'no-restricted-imports': ['error', { patterns: [PACKAGE_FILES] }],
    },
  },
  ...layerRules,
  publisherRule,
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
);
