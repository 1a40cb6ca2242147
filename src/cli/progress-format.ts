/** Text of progress output (progress.ts): sizes in binary units, rates, ETAs and a terminal's bar line. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `512 B`, `1.5 MiB`, `3.2 GiB`: one decimal from KiB on, so a line's width barely moves as it grows. */
export function bytesText(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** The average rate since the start: steadier than the last chunk's, which jumps with every socket read. */
export function rateText(bytes: number, elapsedMs: number): string {
  return `${bytesText(Math.round((bytes * 1000) / Math.max(1, elapsedMs)))}/s`;
}

/** Time left at the average rate so far: `0:42`, `1:02:03`; `--:--` before any byte came. */
export function etaText(bytes: number, total: number, elapsedMs: number): string {
  if (bytes <= 0 || elapsedMs <= 0) return '--:--';
  const seconds = Math.round((Math.max(0, total - bytes) * elapsedMs) / bytes / 1000);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/**
 * One transfer on a terminal, at most `width` characters (a longer line would wrap and break the redraw in place):
 * `boot/x-initrd.img [#######-------]  48% 12.0 MiB/25.0 MiB 3.1 MiB/s ETA 0:04`. The name is shortened from the
 * left (its end tells files apart); without a length, the bar gives way to the bytes and rate.
 */
export function barLine(
  t: { readonly name: string; readonly bytes: number; readonly total: number | null },
  elapsedMs: number,
  width: number,
): string {
  const rate = rateText(t.bytes, elapsedMs);
  const tail =
    t.total === null
      ? ` ${bytesText(t.bytes)} ${rate}`
      : ` ${String(Math.floor((t.bytes * 100) / Math.max(1, t.total))).padStart(3)}% ` +
        `${bytesText(t.bytes)}/${bytesText(t.total)} ${rate} ETA ${etaText(t.bytes, t.total, elapsedMs)}`;
  // The name keeps up to 30 characters before the bar grows beyond 10; below 8 + a 10-wide bar, the bar goes.
  const room = width - tail.length;
  const barWidth =
    t.total === null || room < 8 + 13 ? 0 : Math.min(30, Math.max(10, room - Math.min(t.name.length, 30) - 3));
  const name = shorten(t.name, Math.max(8, room - (barWidth ? barWidth + 3 : 0)));
  if (!barWidth || t.total === null) return `${name}${tail}`.slice(0, width);
  const filled = Math.min(barWidth, Math.floor((t.bytes * barWidth) / Math.max(1, t.total)));
  return `${name} [${'#'.repeat(filled)}${'-'.repeat(barWidth - filled)}]${tail}`.slice(0, width);
}

function shorten(name: string, max: number): string {
  return name.length <= max ? name : `...${name.slice(name.length - (max - 3))}`;
}
