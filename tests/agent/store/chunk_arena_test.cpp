#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "agent/store/chunk_arena.h"

using vigil::store::ChunkArena;
using vigil::store::ChunkBytes;

namespace {

std::vector<uint8_t> pattern(std::size_t n, uint8_t seed) {
  std::vector<uint8_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = static_cast<uint8_t>(seed + i * 7);
  }
  return out;
}

bool holds(const ChunkBytes& c, const std::vector<uint8_t>& expected) {
  return std::equal(expected.begin(), expected.end(), c.get());
}

}  // namespace

TEST_CASE("Chunk arena: copies keep their bytes, across segments and for large chunks",
          "[store][arena]") {
  ChunkArena arena;
  std::vector<std::vector<uint8_t>> originals;
  std::vector<ChunkBytes> copies;
  // Enough 200-byte chunks for several segments, and a few larger than a quarter segment.
  for (int i = 0; i < 5000; ++i) {
    const std::size_t n = i % 1000 == 999 ? ChunkArena::kSegmentBytes / 2 : 200 + i % 13;
    originals.push_back(pattern(n, static_cast<uint8_t>(i)));
    copies.push_back(arena.copy(originals.back().data(), n));
  }
  for (std::size_t i = 0; i < copies.size(); ++i) {
    REQUIRE(holds(copies[i], originals[i]));
  }
  // A moved-from chunk is empty; the moved-to one holds the bytes.
  ChunkBytes moved = std::move(copies[3]);
  CHECK_FALSE(copies[3]);
  CHECK(holds(moved, originals[3]));
}

TEST_CASE("Chunk arena: a segment goes back to the system when its last chunk goes",
          "[store][arena]") {
  const std::size_t before = ChunkArena::mappedBytes();
  {
    ChunkArena arena;
    const auto bytes = pattern(300, 1);
    std::vector<ChunkBytes> chunks;
    // About twelve segments' worth, released oldest first as retention releases them.
    const std::size_t n = 12 * ChunkArena::kSegmentBytes / 300;
    for (std::size_t i = 0; i < n; ++i) {
      chunks.push_back(arena.copy(bytes.data(), bytes.size()));
    }
    CHECK(ChunkArena::mappedBytes() - before >= 12 * ChunkArena::kSegmentBytes);
    CHECK(ChunkArena::mappedBytes() - before <= 13 * ChunkArena::kSegmentBytes);
    for (std::size_t i = 0; i < n / 2; ++i) {
      chunks[i].reset();
    }
    // The first half is gone but for the segment shared with the second half.
    CHECK(ChunkArena::mappedBytes() - before <= 7 * ChunkArena::kSegmentBytes);
    // One chunk left keeps its segment, and only that one.
    for (std::size_t i = n / 2; i + 1 < n; ++i) {
      chunks[i].reset();
    }
    CHECK(ChunkArena::mappedBytes() - before == ChunkArena::kSegmentBytes);
    CHECK(holds(chunks.back(), bytes));
    // A large chunk has a segment of its own, gone with it.
    const auto large = pattern(ChunkArena::kSegmentBytes, 9);
    ChunkBytes big = arena.copy(large.data(), large.size());
    CHECK(ChunkArena::mappedBytes() - before > 2 * ChunkArena::kSegmentBytes);
    big.reset();
    CHECK(ChunkArena::mappedBytes() - before == ChunkArena::kSegmentBytes);
  }
  // The arena gone and its chunks gone: nothing mapped.
  CHECK(ChunkArena::mappedBytes() == before);
}

TEST_CASE("Chunk arena: chunks outlive their arena", "[store][arena]") {
  const std::size_t before = ChunkArena::mappedBytes();
  const auto bytes = pattern(100, 5);
  ChunkBytes kept;
  {
    ChunkArena arena;
    kept = arena.copy(bytes.data(), bytes.size());
  }
  CHECK(holds(kept, bytes));
  kept.reset();
  CHECK(ChunkArena::mappedBytes() == before);
}

TEST_CASE("Chunk arena: copies and releases from many threads", "[store][arena][concurrency]") {
  const std::size_t before = ChunkArena::mappedBytes();
  {
    ChunkArena arena;
    std::atomic<int> intact{0};  // Catch's assertions are not for other threads
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&arena, &intact, t] {
        const auto bytes = pattern(150, static_cast<uint8_t>(t));
        std::vector<ChunkBytes> mine;
        for (int i = 0; i < 20000; ++i) {
          mine.push_back(arena.copy(bytes.data(), bytes.size()));
          if (mine.size() > 500) {
            mine.erase(mine.begin(), mine.begin() + 250);
          }
        }
        if (std::all_of(mine.begin(), mine.end(), [&](const auto& c) { return holds(c, bytes); })) {
          ++intact;
        }
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    CHECK(intact == 4);
  }
  CHECK(ChunkArena::mappedBytes() == before);
}
