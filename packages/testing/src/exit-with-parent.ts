/**
 * Preloaded (`--import`) into every service process a test starts (startServiceProcess): the service stops
 * itself, as on SIGTERM, once the test process that started it is gone. A test process can end without
 * stopping what it started: a test timed out while its service was starting, or vitest tore its worker
 * down. Such a service outlived the test run and kept using CPU (docs/BENCHMARKS-ROUNDS.md, "Thirty-second
 * round": three of them, left by one package's tests, skewed a full `pnpm bench`). Test-only: the
 * services' own code does not know about it.
 */
const parent = process.ppid;
const CHECK_MS = 250;

const watch = setInterval(() => {
  if (process.ppid === parent) return;
  // Once: the services take SIGTERM once (serve.ts), and a second would kill them mid-drain.
  clearInterval(watch);
  process.kill(process.pid, "SIGTERM");
  // Its own shutdown drains within seconds; a process that does not stop on SIGTERM ends here.
  setTimeout(() => process.exit(1), 10_000).unref();
}, CHECK_MS).unref();
