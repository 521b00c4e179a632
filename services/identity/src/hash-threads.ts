/**
 * Sizes libuv's thread pool for identity: 2 threads instead of libuv's 4, unless UV_THREADPOOL_SIZE is
 * set. Imported first by main.ts, for its side effect: libuv reads the variable once, when something
 * first uses the pool, and identity's start-up does (its pool had its 4 threads before it served).
 *
 * The pool runs identity's password hashes (`node:crypto` scrypt, domain/passwords.ts), and each hash
 * takes 16 MiB from malloc on the thread that runs it. glibc keeps an arena per thread and, once one
 * such block has been freed, serves the next from that arena instead of a fresh mapping, so every pool
 * thread that has hashed keeps its 16 MiB or more resident for good. Through the gateway on this 2-core
 * machine (a bench stack, `/proc/<pid>/status`), identity's anonymous RSS was 30.0 MB at start, 67.5
 * after 12 sign-ins one at a time and 118.3 after 8 more at once with 4 threads; 30.1, 50.6 and 67.5
 * with 2 (MB of 10⁶ bytes), and the 8 at once took 259 ms against 356. scrypt is CPU work and a pod's limit is one core
 * (deploy/k8s): threads past two add memory, not sign-ins per second. A fixed mmap threshold (glibc
 * tunable) hands every block back instead, but then each hash faults its 16 MiB in afresh: 45 against
 * 95 ms a hash here. Test: test/process.spec.ts counts the process's pool threads.
 */
export const HASH_THREADS = 2;

process.env.UV_THREADPOOL_SIZE ??= String(HASH_THREADS);
