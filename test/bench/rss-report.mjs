/* global process */
// Preloaded into measured node processes (node --import): reports the process's peak RSS on exit, on stderr,
// as one JSON line the benchmark harness looks for. Linux maxRSS is in KiB.
process.on('exit', () => {
  process.stderr.write(`\n{"bench":"maxrss","kib":${process.resourceUsage().maxRSS}}\n`);
});
