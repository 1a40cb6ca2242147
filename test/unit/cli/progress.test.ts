/**
 * The progress renderer with a fake stream and clock: on a terminal, bars redrawn in place (\r, cursor up) at most
 * 10 times a second, with rate and ETA; otherwise plain lines at start, every tenth or 5 s, and done.
 */
import { describe, expect, it } from 'vitest';
import { barLine, bytesText, etaText, rateText } from '../../../src/cli/progress-format.js';
import { createProgress, createProgressReporter } from '../../../src/cli/progress.js';

const MiB = 1024 * 1024;

function fakeStream(isTTY: boolean, columns = 100) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns, write: (s: string) => writes.push(s) } };
}

/** Escapes as `^` (as `cat -v` shows them), so patterns need no control characters. */
const shown = (s: string | undefined) => (s ?? '').replaceAll('\x1b', '^');

function fakeClock() {
  const clock = { t: 1_000_000, now: () => clock.t };
  return clock;
}

describe('progress text', () => {
  it('formats sizes, rates and ETAs', () => {
    expect(bytesText(512)).toBe('512 B');
    expect(bytesText(1536)).toBe('1.5 KiB');
    expect(bytesText(25 * MiB)).toBe('25.0 MiB');
    expect(bytesText(3.5 * 1024 * MiB)).toBe('3.5 GiB');
    expect(rateText(4 * MiB, 2000)).toBe('2.0 MiB/s');
    expect(etaText(MiB, 5 * MiB, 1000)).toBe('0:04');
    expect(etaText(MiB, 100 * MiB, 1000)).toBe('1:39');
    expect(etaText(MiB, 4000 * MiB, 1000)).toBe('1:06:39');
    expect(etaText(0, MiB, 1000)).toBe('--:--');
  });

  it('fits a bar line into the terminal width, shortening the name from the left', () => {
    const t = { name: 'boot/centos-9-stream-AbCdEf123456-initrd.img', bytes: 12 * MiB, total: 48 * MiB };
    const line = barLine(t, 4000, 79);
    expect(line.length).toBeLessThanOrEqual(79);
    expect(line).toMatch(/initrd\.img \[#+-+\] {2}25% 12\.0 MiB\/48\.0 MiB 3\.0 MiB\/s ETA 0:12$/);
    const narrow = barLine(t, 4000, 60);
    expect(narrow.length).toBeLessThanOrEqual(60);
    expect(narrow).toMatch(/^\.\.\..*initrd\.img {2}25% 12\.0 MiB\/48\.0 MiB 3\.0 MiB\/s ETA 0:12$/); // no room for a bar
    expect(barLine({ name: 'x', bytes: 3 * MiB, total: null }, 1000, 79)).toBe('x 3.0 MiB 3.0 MiB/s');
  });
});

describe('progress on a terminal', () => {
  it('redraws bars in place at most 10 times a second, and leaves a done line', () => {
    const { writes, stream } = fakeStream(true, 100);
    const clock = fakeClock();
    const p = createProgressReporter(stream, clock.now);
    p.update('boot/a', 0, 10 * MiB);
    expect(writes).toEqual([`\rboot/a [${'-'.repeat(30)}]   0% 0 B/10.0 MiB 0 B/s ETA --:--\x1b[K\n`]);
    clock.t += 50;
    p.update('boot/a', MiB, 10 * MiB); // within 100 ms of the last draw: not drawn
    expect(writes).toHaveLength(1);
    clock.t += 950;
    p.update('boot/a', 2 * MiB, 10 * MiB);
    expect(writes[1]).toBe(
      `\r\x1b[1Aboot/a [${'#'.repeat(6)}${'-'.repeat(24)}]  20% 2.0 MiB/10.0 MiB 2.0 MiB/s ETA 0:04\x1b[K\n`,
    );
    // A second transfer: both bars, redrawn from the first one's line.
    clock.t += 100;
    p.update('boot/b', 0, 4 * MiB);
    expect(shown(writes[2])).toMatch(/^\r\^\[1Aboot\/a \[.*\^\[K\nboot\/b \[-+\] {3}0% 0 B\/4\.0 MiB .*\^\[K\n$/);
    // The first ends: its done line stays above, the other bar below it; drawn at once, whatever the time.
    clock.t += 1;
    p.update('boot/a', 10 * MiB, 10 * MiB, true);
    expect(shown(writes[3])).toMatch(
      /^\r\^\[2Aboot\/a: done, 10\.0 MiB in 1\.1 s, 9\.1 MiB\/s\^\[K\nboot\/b \[.*\^\[K\n\^\[J$/,
    );
    clock.t += 500;
    p.update('boot/b', MiB, 4 * MiB, true);
    expect(writes[4]).toBe('\r\x1b[1Aboot/b: stopped at 1.0 MiB of 4.0 MiB in 0.5 s, 2.0 MiB/s\x1b[K\n\x1b[J');
    p.close();
    expect(writes).toHaveLength(5);
  });

  it('erases the bars before another write (a log line) and draws them again below it', () => {
    const { writes, stream } = fakeStream(true, 100);
    const clock = fakeClock();
    const p = createProgressReporter(stream, clock.now);
    p.update('boot/a', 0, 10 * MiB);
    stream.write('a log line\n');
    expect(writes.slice(1)).toEqual(['\r\x1b[1A\x1b[J', 'a log line\n']);
    clock.t += 10; // sooner than the redraw interval: drawn anyway, the bar is gone from the screen
    p.update('boot/a', MiB, 10 * MiB);
    expect(shown(writes[3])).toMatch(/^\rboot\/a \[#{3}-+\] {2}10% /);
    p.close();
    stream.write('after close\n');
    expect(writes.at(-1)).toBe('after close\n');
    expect(shown(writes.at(-2))).toMatch(/^\r\^\[1Aboot\/a/); // close's last draw, then plain writes again
  });

  it('never draws a line wider than the terminal', () => {
    const { writes, stream } = fakeStream(true, 50);
    const clock = fakeClock();
    const p = createProgressReporter(stream, clock.now);
    p.update(`boot/${'x'.repeat(80)}-initrd.img`, 0, 100 * MiB);
    clock.t += 200;
    p.update(`boot/${'x'.repeat(80)}-initrd.img`, 3 * MiB, 100 * MiB);
    for (const w of writes)
      for (const line of w.split('\n').filter(Boolean)) {
        expect(shown(line).replace(/\r|\^\[\d*[AKJ]/g, '').length).toBeLessThan(50);
      }
  });
});

describe('progress as plain lines', () => {
  it('writes start, every tenth or 5 s, and done with bytes and rate; nothing for small files', () => {
    const { writes, stream } = fakeStream(false);
    const clock = fakeClock();
    const p = createProgressReporter(stream, clock.now);
    p.update('boot/small', 0, 200_000);
    p.update('boot/small', 200_000, 200_000, true);
    p.update('boot/a', 0, 10 * MiB);
    for (let i = 1; i <= 40; i++) {
      clock.t += 100;
      p.update('boot/a', (i * 10 * MiB) / 40, 10 * MiB);
    }
    p.update('boot/a', 10 * MiB, 10 * MiB, true);
    expect(writes).toEqual([
      'boot/a: started, 10.0 MiB\n',
      ...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => {
        const s = n * 0.4;
        return `boot/a: ${n}.0 MiB of 10.0 MiB (${n * 10}%), 2.5 MiB/s, ETA 0:0${Math.round(4 - s)}\n`;
      }),
      'boot/a: done, 10.0 MiB in 4.0 s, 2.5 MiB/s\n',
    ]);
  });

  it('writes a line every 5 s when the size is unknown, from 1 MiB on', () => {
    const { writes, stream } = fakeStream(false);
    const clock = fakeClock();
    const p = createProgressReporter(stream, clock.now);
    p.update('boot/c', 0, null);
    p.update('boot/c', MiB, null);
    for (let i = 1; i <= 12; i++) {
      clock.t += 1000;
      p.update('boot/c', MiB + i * MiB, null);
    }
    p.update('boot/c', 13 * MiB, null, true);
    expect(writes).toEqual([
      'boot/c: started, size unknown\n',
      'boot/c: 6.0 MiB, 1.2 MiB/s\n',
      'boot/c: 11.0 MiB, 1.1 MiB/s\n',
      'boot/c: done, 13.0 MiB in 12.0 s, 1.1 MiB/s\n',
    ]);
  });

  it("draws import's per-file progress too", () => {
    const { writes, stream } = fakeStream(false);
    const p = createProgress(createProgressReporter(stream, () => 0));
    const file = p('boot/x', 2 * MiB);
    file.add(2 * MiB);
    file.done();
    expect(writes).toEqual(['boot/x: started, 2.0 MiB\n', 'boot/x: done, 2.0 MiB in 0.0 s, 2.0 GiB/s\n']);
  });
});
