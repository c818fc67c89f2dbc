#include "chunk_arena.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "mapped_memory.h"

namespace vigil::store {

struct ChunkArena::Segment {
  std::atomic<uint32_t> refs{1};
  std::size_t mapped = 0;  // length of the mapping, which starts at this header
};

namespace {

std::atomic<std::size_t> g_segment_mapped_bytes{0};

constexpr std::size_t kSegmentHeaderBytes = 16;
constexpr std::size_t kLargeChunkBytes = ChunkArena::kSegmentBytes / 4;

}  // namespace

ChunkArena::Segment* ChunkArena::newSegment(std::size_t bytes) {
  static_assert(sizeof(Segment) <= kSegmentHeaderBytes);
  const std::size_t mapped = roundUpTo(bytes, kPageBytes);
  auto* segment = new (mapAligned(mapped, kSegmentBytes)) Segment;
  segment->mapped = mapped;
  // Under AddressSanitizer what is not a live chunk stays poisoned, and chunks are kept apart.
  poisonRegion(reinterpret_cast<uint8_t*>(segment) + kSegmentHeaderBytes,
               mapped - kSegmentHeaderBytes);
  g_segment_mapped_bytes.fetch_add(mapped, std::memory_order_relaxed);
  return segment;
}

ChunkArena::Segment* ChunkArena::segmentOf(const uint8_t* data) {
  // Every chunk starts within the first kSegmentBytes of its segment, large ones included.
  return reinterpret_cast<Segment*>(reinterpret_cast<uintptr_t>(data) & ~(kSegmentBytes - 1));
}

void ChunkArena::release(Segment* segment) {
  if (segment->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    const std::size_t mapped = segment->mapped;
    segment->~Segment();
    unmapRegion(segment, mapped);
    g_segment_mapped_bytes.fetch_sub(mapped, std::memory_order_relaxed);
  }
}

void ChunkBytes::reset() {
  if (data_ != nullptr) {
    ChunkArena::release(ChunkArena::segmentOf(data_));
    data_ = nullptr;
  }
}

ChunkArena::~ChunkArena() {
  if (current_ != nullptr) {
    release(current_);
  }
}

ChunkBytes ChunkArena::copy(const uint8_t* bytes, std::size_t n) {
  const std::size_t size = std::max<std::size_t>(n, 1);  // a distinct place even when empty
  uint8_t* place = nullptr;
  if (size > kLargeChunkBytes) {
    Segment* own = newSegment(kSegmentHeaderBytes + size);  // its one reference is the chunk's
    place = reinterpret_cast<uint8_t*>(own) + kSegmentHeaderBytes;
  } else {
    std::lock_guard lock(mu_);
    const std::size_t step = redZoneBytes() > 0 ? roundUpTo(size, 8) + redZoneBytes() : size;
    if (current_ == nullptr || used_ + step > kSegmentBytes) {
      Segment* fresh = newSegment(kSegmentBytes);
      if (current_ != nullptr) {
        release(current_);
      }
      current_ = fresh;
      used_ = kSegmentHeaderBytes;
    }
    current_->refs.fetch_add(1, std::memory_order_relaxed);
    place = reinterpret_cast<uint8_t*>(current_) + used_;
    used_ += step;
  }
  unpoisonRegion(place, size);
  if (n > 0) {
    std::memcpy(place, bytes, n);
  }
  return ChunkBytes(place);
}

std::size_t ChunkArena::mappedBytes() {
  return g_segment_mapped_bytes.load(std::memory_order_relaxed);
}

}  // namespace vigil::store
