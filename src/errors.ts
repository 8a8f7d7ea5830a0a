/**
 * One error base class for the whole project. `code` is stable: it is what goes into the
 * database and what reports group by. `fields` carries structured detail (url, attr, key...).
 */
export class FodderError extends Error {
  readonly code: string;
  readonly fields: Record<string, unknown>;

  constructor(code: string, message: string, fields: Record<string, unknown> = {}) {
    super(message);
    this.name = 'FodderError';
    this.code = code;
    this.fields = fields;
  }

  /** The plain shape that crosses a worker boundary. */
  toPlain(): PlainError {
    return { ok: false, code: this.code, message: this.message, fields: this.fields };
  }

  static fromPlain(p: PlainError): FodderError {
    return new FodderError(p.code, p.message, p.fields ?? {});
  }
}

export interface PlainError {
  ok: false;
  code: string;
  message: string;
  fields?: Record<string, unknown>;
}

/** Error codes used across stages. Fetch outcome codes live in src/fetch. */
export const ErrorCode = {
  CONFIG_INVALID: 'CONFIG_INVALID',
  CONFIG_NOT_FOUND: 'CONFIG_NOT_FOUND',
  NIXPKGS_NOT_FOUND: 'NIXPKGS_NOT_FOUND',
  NIX_MISSING: 'NIX_MISSING',
  /** the Nix found is older than the package set's lib/minver.nix */
  NIX_TOO_OLD: 'NIX_TOO_OLD',
  NIX_FAILED: 'NIX_FAILED',
  DRV_PARSE: 'DRV_PARSE',
  DB_EMPTY: 'DB_EMPTY',
  DB_INVALID: 'DB_INVALID',
  ATTR_UNKNOWN: 'ATTR_UNKNOWN',
  ATTR_NOT_CRAWLED: 'ATTR_NOT_CRAWLED',
  ATTR_FAILED: 'ATTR_FAILED',
  USAGE: 'USAGE',
} as const;
