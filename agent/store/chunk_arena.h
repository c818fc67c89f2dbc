#pragma once
// Where closed chunks' bytes live: 256 KiB segments mapped from the system and filled in order,
// not the general heap.
//
// Why: a closed chunk is small (~100-300 bytes), lives for the whole retention and is made all
// the time, one per series every max_samples_per_chunk samples. Placed by malloc among the
// short-lived buffers of scrapes, queries and rule evaluations, each one pins the page it lands
// on, and the process's footprint creeps upward although the memory in use stays flat
// (fragmentation: the soak test showed twice the memory in use held from the system, growing).
// Chunks close in time order and leave in time order (a chunk goes when its newest sample leaves
// the retention, or under the memory budget oldest first), so the chunks of one segment die
// together and the segment goes back to the system whole.
//
// A segment counts the chunks in it; the last one released unmaps it. Segments are aligned to
// their size so that a chunk finds its segment from its own address, and a chunk costs no more
// than its bytes.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace vigil::store {

/// The bytes of one closed chunk in a ChunkArena segment: move-only, releases its place when
/// destroyed.
class ChunkBytes {
 public:
  ChunkBytes() = default;
  ChunkBytes(ChunkBytes&& other) noexcept : data_(other.data_) { other.data_ = nullptr; }
  ChunkBytes& operator=(ChunkBytes&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = other.data_;
      other.data_ = nullptr;
    }
    return *this;
  }
  ChunkBytes(const ChunkBytes&) = delete;
  ChunkBytes& operator=(const ChunkBytes&) = delete;
  ~ChunkBytes() { reset(); }

  const uint8_t* get() const { return data_; }
  explicit operator bool() const { return data_ != nullptr; }
  void reset();

 private:
  friend class ChunkArena;
  explicit ChunkBytes(uint8_t* data) : data_(data) {}
  uint8_t* data_ = nullptr;
};

class ChunkArena {
 public:
  /// Segment size and alignment. A chunk larger than a quarter of it gets a segment of its own.
  static constexpr std::size_t kSegmentBytes = 256 * 1024;

  ChunkArena() = default;
  ~ChunkArena();
  ChunkArena(const ChunkArena&) = delete;
  ChunkArena& operator=(const ChunkArena&) = delete;

  /// A copy of `n` bytes at `bytes`, kept until the returned ChunkBytes is destroyed (which may
  /// be after the arena is). Throws std::bad_alloc when the system refuses memory.
  ChunkBytes copy(const uint8_t* bytes, std::size_t n);

  /// Bytes mapped by all arenas of the process, for the store's self-metrics and tests.
  static std::size_t mappedBytes();

 private:
  friend class ChunkBytes;
  struct Segment;
  static Segment* newSegment(std::size_t bytes);
  static Segment* segmentOf(const uint8_t* data);
  static void release(Segment* segment);

  std::mutex mu_;
  Segment* current_ = nullptr;  // holds one reference of its own while being filled
  std::size_t used_ = 0;        // bytes of current_ handed out, header included
};

}  // namespace vigil::store
