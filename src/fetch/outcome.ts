import { FodderError } from '../errors.js';

/**
 * What one try of one URL came to. These strings go into `fetch_attempts.outcome` and are what
 * the report groups by; never rename one.
 */
export const OUTCOMES = [
  'ok',
  'http-404',
  'http-410',
  'http-4xx', // any other 4xx
  'http-5xx',
  'http-other', // a status fodder cannot use (1xx, 204, 304, a 3xx without Location, ...)
  'dns',
  'connect',
  'timeout',
  'reset',
  'tls',
  'truncated', // the body ended before its Content-Length (or the FTP SIZE)
  'too-large',
  'hash-mismatch',
  'refused-scheme',
  'bad-url',
  'redirect-loop',
  'bad-redirect',
  'ftp-not-found',
  'ftp-error',
  'error',
] as const;

export type Outcome = (typeof OUTCOMES)[number];

/**
 * Failures of the upstream host rather than of the source: worth another try later in the same
 * run (with backoff). A 404 or a hash mismatch is an answer and is not retried.
 */
const TRANSIENT: ReadonlySet<Outcome> = new Set<Outcome>(['http-5xx', 'connect', 'timeout', 'reset', 'truncated', 'ftp-error']);

/** Whether a try with this outcome is retried. 408 and 429 are the 4xx statuses that mean "later". */
export function isTransient(outcome: Outcome, httpStatus: number | null = null, ftpReply: number | null = null): boolean {
  if (outcome === 'http-4xx') return httpStatus === 408 || httpStatus === 429;
  if (outcome === 'ftp-error') return ftpReply === null || (ftpReply >= 400 && ftpReply < 500);
  return TRANSIENT.has(outcome);
}

/** The outcome for an HTTP status that ends a try (not 2xx, not a followed redirect). */
export function outcomeOfStatus(status: number): Outcome {
  if (status === 404) return 'http-404';
  if (status === 410) return 'http-410';
  if (status >= 400 && status < 500) return 'http-4xx';
  if (status >= 500 && status < 600) return 'http-5xx';
  return 'http-other';
}

/** What a failed try came to: each is also an ErrorCode (FetchError's `super` does not compile otherwise). */
export type FailedOutcome = Exclude<Outcome, 'ok'>;

/** A failed try. `code` is the outcome string itself, as stored in the database. */
export class FetchError extends FodderError {
  readonly outcome: FailedOutcome;

  constructor(outcome: FailedOutcome, message: string, fields: Record<string, unknown> = {}) {
    super(outcome, message, fields);
    this.name = 'FetchError';
    this.outcome = outcome;
  }
}
