/**
 * How every embedded PGlite here is started. PostgreSQL's default 128 MB of shared buffers lives inside
 * PGlite's WebAssembly heap, and a start pays for it (a process's RSS falls by about that much with a
 * smaller setting, and a third of a start's CPU went to one WebAssembly function): measured on this machine, a
 * PGlite on a data folder became ready in 867–887 ms (984–999 ms of CPU) with an RSS of 282–284 MB, and
 * with 16 MB in 481–487 ms (567–574 ms of CPU) and 161 MB. Sixteen megabytes (2,048 pages) is room for a
 * local stack's or a test's data; the services in their images run PostgreSQL, which this does not touch.
 * Passed as a start parameter after PGlite's own, so the data folder's postgresql.conf (time zone, locale,
 * text search configuration) is left as initdb wrote it: PGlite's `postgresqlconf` option would replace
 * that file.
 */
export function pgliteOptions(defaultStartParams: readonly string[]): { startParams: string[] } {
  return { startParams: [...defaultStartParams, "-c", "shared_buffers=16MB"] };
}
