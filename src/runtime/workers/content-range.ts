/** RFC 9110 14.4 `Content-Range: bytes <first>-<last>/<complete-length or *>`; null when absent or malformed. */
export function parseContentRange(
  value: string | undefined,
): { readonly start: number; readonly end: number; readonly total: number | null } | null {
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value ?? '');
  if (!m) return null;
  const start = Number(m[1]);
  const end = Number(m[2]);
  const total = m[3] === '*' ? null : Number(m[3]);
  if (end < start || (total !== null && end >= total)) return null;
  return { start, end, total };
}

/**
 * The ETag when it is strong (RFC 9110 8.8.3: If-Range needs a strong validator to mean "the same bytes"), else null.
 * A weak one (`W/"..."`) only promises an equivalent representation, not byte-identical ranges.
 */
export function strongEtag(value: string | undefined): string | null {
  const v = value?.trim();
  return v !== undefined && /^"[^"]*"$/.test(v) ? v : null;
}
