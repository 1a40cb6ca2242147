/**
 * A URL as it may be recorded, logged and shown: media URLs can carry credentials (`ftp://user:pass@mirror/...`,
 * smart-proxy passes them to curl), which must never reach the status API, the catalog or a log line.
 */
export function redactUrl(input: string | URL): string {
  let url: URL;
  try {
    url = typeof input === 'string' ? new URL(input) : new URL(input.href);
  } catch {
    return typeof input === 'string' ? hideCredentials(input) : input.href;
  }
  if (url.password) url.password = '***';
  return url.href;
}

/**
 * Text a caller sent as a URL (or a piece of one), fit to quote in a message when it may not parse: the `user:pass@`
 * after the scheme becomes `***@`. Up to the last "@" before the path, as URL parsers read it (regression: the old
 * `//[^/@]*@` stopped at the first one and showed the rest of a password containing "@"); backslashes count as
 * slashes, as they do for http(s) URLs.
 */
export function hideCredentials(text: string): string {
  return text.replace(/^(\s*[A-Za-z][A-Za-z0-9+.-]*:)?([\s/\\]*)[^/\\?#]*@/, '$1$2***@');
}
