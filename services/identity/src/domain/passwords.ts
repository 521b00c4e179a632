import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from "node:crypto";

/** scrypt parameters: memory-hard (128 * N * r = 16 MiB per hash), about 50 ms on one core here. */
export const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32, saltLength: 16 } as const;

/**
 * Runs at most `size` tasks at once; the rest wait in arrival order. A task that fails frees its place
 * like one that succeeds.
 */
export class Slots {
  private readonly waiting: Array<() => void> = [];

  constructor(private free: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((start) => this.waiting.push(start));
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/**
 * How many hashes run at once: one fewer than libuv's pool has threads, and at least one. scrypt runs on
 * that pool, and so do identity's token signatures (WebCrypto) and its database host's lookups: with
 * every thread hashing, a token refresh waited for a hash to end (see ../hash-threads.ts).
 */
export function hashesAtOnce(env: NodeJS.ProcessEnv = process.env): number {
  // As libuv reads the variable: absent, 4; else its leading integer (atoi), between 1 and 1024.
  const raw = env.UV_THREADPOOL_SIZE;
  const threads = raw === undefined ? 4 : Math.min(1024, Math.max(1, Number.parseInt(raw, 10) || 0));
  return Math.max(1, threads - 1);
}

let hashing: Slots | undefined;

function derive(
  password: string,
  salt: Buffer,
  N: number,
  r: number,
  p: number,
  keyLength: number,
): Promise<Buffer> {
  const options: ScryptOptions = { N, r, p, maxmem: 256 * N * r };
  hashing ??= new Slots(hashesAtOnce());
  return hashing.run(
    () =>
      new Promise((resolve, reject) =>
        scrypt(password.normalize("NFC"), salt, keyLength, options, (err, key) =>
          err ? reject(err) : resolve(key),
        ),
      ),
  );
}

/** "scrypt$N$r$p$salt$hash" (base64url): parameters travel with the hash so they can change later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SCRYPT.saltLength);
  const key = await derive(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, SCRYPT.keyLength);
  return ["scrypt", SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString("base64url"), key.toString("base64url")].join(
    "$",
  );
}

/** Constant-time comparison against a stored hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split("$");
  if (scheme !== "scrypt" || !salt || !hash) return false;
  const expected = Buffer.from(hash, "base64url");
  const key = await derive(
    password,
    Buffer.from(salt, "base64url"),
    Number(n),
    Number(r),
    Number(p),
    expected.length,
  );
  return timingSafeEqual(key, expected);
}

// Verified against when the email is unknown, so both failures cost the same time.
const dummy = hashPassword(randomBytes(16).toString("hex"));

export async function burnPasswordCheck(password: string): Promise<void> {
  await verifyPassword(password, await dummy);
}
