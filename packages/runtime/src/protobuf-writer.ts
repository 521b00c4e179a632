import { BinaryWriter } from "@bufbuild/protobuf/wire";

/**
 * One buffer, shared, for the messages protobuf-es encodes.
 *
 * `toBinary` writes every message into a new `BinaryWriter`, whose first buffer is a 128-byte
 * `Uint8Array`, doubled as the message grows, and copies the result out at the end. V8 keeps typed
 * arrays over 64 bytes off its heap: each costs ~700 ns to allocate (against ~20 ns for 64 bytes) and
 * is more work for the collector. A 1.2 KB list of orders took five such buffers and 21 µs to encode;
 * with this, 10 µs; the hop's 16-byte echo reply 630 → 125 ns (docs/BENCHMARKS-ROUNDS.md, "Fourteenth round").
 *
 * Installed, the writers take their first buffer from here instead: one 64 KiB scratch buffer that a
 * new writer borrows. The bytes they return are still a copy (`finish()` slices), so a result never
 * shares memory with the scratch buffer. Only one writer holds it at a time; a new writer that needs it
 * takes it over and gives the previous holder a buffer of its own with the bytes it had written, so a
 * writer kept across calls (or left unfinished by a throw) stays correct. JavaScript runs one writer
 * method at a time and none calls out to another writer, so a takeover never lands mid-write. A
 * message that outgrows the scratch buffer moves to a buffer of its own, as before.
 *
 * This replaces one method of protobuf-es's `BinaryWriter` (version pinned in package.json) and uses
 * its fields `buffer`, `pos` and `viewCache`: `install` checks they are there and that a sample encodes
 * to the same bytes, and leaves the library as it is otherwise.
 */

/** The fields of protobuf-es's BinaryWriter this module reads and sets. */
interface WriterInternals {
  buffer: Uint8Array;
  pos: number;
  viewCache: DataView;
  ensureCapacity(size: number): void;
}

const SCRATCH_BYTES = 64 * 1024;
/** BinaryWriter's own first size, kept for buffers of their own. */
const INITIAL_BYTES = 128;
const EMPTY = new Uint8Array(0);
const EMPTY_VIEW = new DataView(EMPTY.buffer);

const scratch = new Uint8Array(SCRATCH_BYTES);
const scratchView = new DataView(scratch.buffer);
let holder: WriterInternals | undefined;

const proto = BinaryWriter.prototype as unknown as WriterInternals;
const original = proto.ensureCapacity;

function ensureCapacity(this: WriterInternals, size: number): void {
  const required = this.pos + size;
  if (required > this.buffer.length) grow(this, required);
}

function grow(w: WriterInternals, required: number): void {
  const old = w.buffer;
  if (old.length === 0 && required <= SCRATCH_BYTES) {
    if (holder !== undefined && holder !== w && holder.buffer === scratch) release(holder);
    holder = w;
    w.buffer = scratch;
    w.viewCache = scratchView;
    return;
  }
  w.buffer = copyOf(old, w.pos, required);
  w.viewCache = EMPTY_VIEW; // rebuilt by the writer on its next use
  if (old === scratch) holder = undefined;
}

/** The previous holder keeps what it wrote, in a buffer of its own. */
function release(w: WriterInternals): void {
  if (w.pos === 0) {
    w.buffer = EMPTY;
  } else {
    w.buffer = copyOf(scratch, w.pos, w.pos);
  }
  w.viewCache = EMPTY_VIEW;
}

/** A buffer of at least `required` bytes (BinaryWriter's sizes: 128, doubled) holding `bytes[0, used)`. */
function copyOf(bytes: Uint8Array, used: number, required: number): Uint8Array {
  let size = bytes === scratch ? INITIAL_BYTES : bytes.length || INITIAL_BYTES;
  while (size < required) size *= 2;
  const next = new Uint8Array(size);
  if (used > 0) next.set(bytes.subarray(0, used));
  return next;
}

let installed = false;

/**
 * Makes protobuf-es's writers share the scratch buffer, for this process. Returns whether it is on:
 * false (and nothing changed) if this version of the library does not have the internals it relies on.
 */
export function shareProtobufWriterBuffer(): boolean {
  if (installed) return true;
  if (!fitsLibrary()) return false;
  proto.ensureCapacity = ensureCapacity;
  if (!sameBytes()) {
    proto.ensureCapacity = original;
    return false;
  }
  installed = true;
  return true;
}

/** Puts the library's own method back (tests compare against it). */
export function unshareProtobufWriterBuffer(): void {
  proto.ensureCapacity = original;
  if (holder) release(holder);
  holder = undefined;
  installed = false;
}

function fitsLibrary(): boolean {
  if (typeof original !== "function") return false;
  const w = new BinaryWriter() as unknown as Record<string, unknown>;
  return w.buffer instanceof Uint8Array && typeof w.pos === "number" && w.viewCache instanceof DataView;
}

/** A sample that takes every path here: a first buffer, nesting, a takeover, a writer outgrowing the scratch. */
function sameBytes(): boolean {
  const write = () => {
    const outer = new BinaryWriter();
    outer.tag(1, 2).fork().string("dispatch").double(0.5).sint64(-3n);
    const inner = new BinaryWriter().uint32(300).bytes(new Uint8Array(200).fill(7)).finish();
    outer
      .join()
      .bytes(inner)
      .fixed64(2n ** 63n)
      .float(1.5);
    const big = new BinaryWriter()
      .uint32(1)
      .bytes(new Uint8Array(SCRATCH_BYTES + 10).fill(9))
      .finish();
    return [outer.finish(), inner, big];
  };
  const ours = write();
  proto.ensureCapacity = original;
  const theirs = write();
  proto.ensureCapacity = ensureCapacity;
  return ours.every((bytes, i) => Buffer.compare(bytes, theirs[i]!) === 0);
}
