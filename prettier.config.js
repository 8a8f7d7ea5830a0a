/**
 * Prettier, set to what the code already does: single quotes, semicolons, trailing commas, long
 * lines (a call with its arguments reads better on one line than spread over six), and an object
 * literal written on one line when it fits.
 *
 * @type {import('prettier').Config}
 */
export default {
  singleQuote: true,
  printWidth: 160,
  trailingComma: 'all',
  objectWrap: 'collapse',
  // JSON files keep the layout they are written in
  overrides: [{ files: '*.json', options: { objectWrap: 'preserve' } }],
};
