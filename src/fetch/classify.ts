import type { Outcome } from './outcome.js';

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
  'EPROTO',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
]);

/**
 * The outcome for an error thrown while talking to a server (Node, undici or basic-ftp).
 * `truncatedIfClosed`: the server closed the connection cleanly before the announced length.
 */
export function outcomeOfError(err: unknown, truncatedIfClosed: boolean): { outcome: Outcome; message: string } {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } } | undefined;
  const code = e?.code ?? e?.cause?.code ?? '';
  const message = e?.message ?? String(err);
  const is = (o: Outcome) => ({ outcome: o, message: message || code });
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
    case 'EAI_FAIL':
      return is('dns');
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
    case 'EADDRNOTAVAIL':
      return is('connect');
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return is('timeout');
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
      return is('reset');
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
      return is(truncatedIfClosed ? 'truncated' : 'reset');
    case 'UND_ERR_INVALID_ARG':
    case 'ERR_INVALID_URL':
      return is('bad-url');
    default:
      break;
  }
  if (TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') || /certificate|ssl|tls/i.test(message)) {
    return is('tls');
  }
  // basic-ftp reports its own timeouts as plain errors
  if (/^Timeout \((control|data) socket\)/.test(message)) return is('timeout');
  if (/server sent FIN packet|socket closed|closed by the server/i.test(message)) return is(truncatedIfClosed ? 'truncated' : 'reset');
  return is('error');
}
