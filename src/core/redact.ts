/**
 * A URL as it may be recorded, logged and shown: media URLs can carry credentials (`ftp://user:pass@mirror/...`,
 * smart-proxy passes them to curl), which must never reach the status API, the catalog or a log line.
 */
export function redactUrl(input: string | URL): string {
  let url: URL;
  try {
    url = typeof input === 'string' ? new URL(input) : new URL(input.href);
  } catch {
    return typeof input === 'string' ? input.replace(/\/\/[^/@]*@/, '//***@') : input.href;
  }
  if (url.password) url.password = '***';
  return url.href;
}
