import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type { ZodIssue, ZodTypeAny, output } from 'zod';
import { FodderError, ErrorCode } from '../errors.js';
import { configSchema, type RawConfig } from './schema.js';

function describeIssue(file: string, issue: ZodIssue): string {
  const key = issue.path.length ? issue.path.join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.length ? ` in ${issue.path.join('.')}` : '';
    return `${file}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}${where}`;
  }
  if (issue.code === 'invalid_type') {
    return `${file}: key "${key}": expected ${issue.expected}, got ${issue.received}`;
  }
  return `${file}: key "${key}": ${issue.message}`;
}

/** The YAML parser, loaded when a config file is read: at start-up it cost every command 37 ms. */
const yaml = (): typeof Yaml => createRequire(import.meta.url)('yaml') as typeof Yaml;

/** Reads a YAML config file (not yet validated: see `validateConfig`); a problem names the file. */
export function readConfigData(path: string): unknown {
  if (!existsSync(path)) {
    throw new FodderError(ErrorCode.CONFIG_NOT_FOUND, `config file not found: ${path}`, { file: path });
  }
  let data: unknown;
  try {
    data = yaml().parse(readFileSync(path, 'utf8'));
  } catch (err) {
    const detail = err instanceof yaml().YAMLParseError ? err.message.split('\n')[0] : (err as Error).message;
    throw new FodderError(ErrorCode.CONFIG_INVALID, `${path}: not valid YAML: ${detail}`, { file: path });
  }
  return data;
}

/** Validates already-parsed config data. */
export function validateConfig(data: unknown, origin: string): RawConfig {
  const result = configSchema.safeParse(data);
  if (!result.success) {
    const lines = result.error.issues.map((i) => describeIssue(origin, i));
    throw new FodderError(ErrorCode.CONFIG_INVALID, lines.join('\n'), { file: origin, issues: result.error.issues });
  }
  return result.data;
}

/**
 * A command-line value checked against the schema of the setting it sets (the same bounds as
 * the config file's); a bad one is a usage error naming the option.
 */
export function optionValue<S extends ZodTypeAny>(option: string, schema: S, value: unknown): output<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    const shown = typeof value === 'number' && Number.isNaN(value) ? 'not a number' : JSON.stringify(value);
    throw new FodderError(ErrorCode.USAGE, `${option}: ${result.error.issues[0].message} (got ${shown})`, { option, value });
  }
  return result.data as output<S>;
}

/** A numeric command-line value (given as text) checked against its setting's schema. */
export function numericOption<S extends ZodTypeAny>(option: string, schema: S, text: string | number | undefined): output<S> | undefined {
  if (text === undefined) return undefined;
  const n = typeof text === 'number' ? text : text.trim() === '' ? NaN : Number(text);
  if (Number.isNaN(n)) {
    throw new FodderError(ErrorCode.USAGE, `${option}: Expected number, got "${text}"`, { option, value: text });
  }
  return optionValue(option, schema, n);
}
