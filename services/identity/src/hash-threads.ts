/**
 * Sizes libuv's thread pool for identity: 2 threads instead of libuv's 4, unless UV_THREADPOOL_SIZE is
 * set. Imported first by main.ts, for its side effect: libuv reads the variable once, when something
 * first uses the pool, and identity's start-up does (its pool had its 4 threads before it served).
 *
 * The pool runs identity's password hashes (`node:crypto` scrypt, domain/passwords.ts), and each hash
 * takes 16 MiB from malloc on the thread that runs it. glibc keeps an arena per thread and, once one
 * such block has been freed, serves the next from that arena instead of a fresh mapping, so every pool
 * thread that has hashed keeps its 16 MiB or more resident for good. The pool also signs identity's
 * tokens (WebCrypto) and looks up its database's host, so passwords.ts hashes on all threads but one
 * (here: one at a time), and a token refresh never waits behind a hash.
 *
 * Measured through the gateway on this 2-core machine (a bench stack; MB of 10⁶ bytes; docs/BENCHMARKS-ROUNDS.md,
 * "Twenty-first round"): identity's anonymous RSS after 12 sign-ins one at a time and then 8 at once,
 * 67.0–67.5 and 100.7–118.3 MB with libuv's 4 threads, 50.1–50.3 and 67.9–84.4 MB now; a refresh's
 * median with 2 sign-ins in flight 19.6 ms then, 10.7 ms now (8.1–10.5 alone). scrypt is CPU work and
 * a pod's limit is one core (deploy/k8s), where one hash at a time loses no sign-ins per second; on these
 * 2 cores the 8 at once took 411–493 ms against 320–356. A fixed mmap threshold (glibc tunable) hands
 * every block back instead, but then each hash faults its 16 MiB in afresh: 45 against 95 ms a hash here.
 * Test: test/process.spec.ts counts the process's pool threads.
 */
export const HASH_THREADS = 2;

// Empty counts as unset here, as in every setting of Dispatch's (libuv would read it as 1 thread).
if (!process.env.UV_THREADPOOL_SIZE) process.env.UV_THREADPOOL_SIZE = String(HASH_THREADS);
