#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "agent/store/head_pool.h"

using vigil::store::HeadAllocator;
using vigil::store::HeadPool;

TEST_CASE("Head pool: buffers keep their bytes and reuse freed slots", "[store][head_pool]") {
  const std::size_t before = HeadPool::mappedBytes();
  {
    std::vector<std::vector<uint8_t, HeadAllocator<uint8_t>>> heads(3000);
    // Every head grows through the size classes in steps, as the store's heads do.
    for (std::size_t step = 1; step <= 12; ++step) {
      for (std::size_t i = 0; i < heads.size(); ++i) {
        auto& h = heads[i];
        h.reserve(HeadPool::slotSize(step * 60));
        while (h.size() < step * 60 - 10) {
          h.push_back(static_cast<uint8_t>(i + h.size()));
        }
      }
    }
    for (std::size_t i = 0; i < heads.size(); ++i) {
      for (std::size_t j = 0; j < heads[i].size(); ++j) {
        REQUIRE(heads[i][j] == static_cast<uint8_t>(i + j));
      }
    }
    // What is mapped is about what is in use (3,000 x 768 bytes), not the sum of every size
    // the heads passed through: the smaller classes' slabs went back as the heads left them.
    CHECK(HeadPool::mappedBytes() - before < 3000 * 768 * 5 / 4 + 12 * HeadPool::kSlabBytes);
  }
  // All freed: each class keeps at most one slab.
  CHECK(HeadPool::mappedBytes() - before <=
        HeadPool::kLargestSlot / HeadPool::kClassBytes * HeadPool::kSlabBytes);
}

TEST_CASE("Head pool: a slot is rounded to its class and large buffers bypass the slabs",
          "[store][head_pool]") {
  CHECK(HeadPool::slotSize(1) == 64);
  CHECK(HeadPool::slotSize(64) == 64);
  CHECK(HeadPool::slotSize(65) == 128);
  CHECK(HeadPool::slotSize(HeadPool::kLargestSlot) == HeadPool::kLargestSlot);
  CHECK(HeadPool::slotSize(HeadPool::kLargestSlot + 1) == HeadPool::kLargestSlot + 1);
  const std::size_t before = HeadPool::mappedBytes();
  void* big = HeadPool::allocate(HeadPool::kLargestSlot * 3);
  std::memset(big, 7, HeadPool::kLargestSlot * 3);
  CHECK(HeadPool::mappedBytes() == before);
  HeadPool::deallocate(big, HeadPool::kLargestSlot * 3);
}

TEST_CASE("Head pool: allocations and frees from many threads", "[store][head_pool][concurrency]") {
  std::atomic<int> intact{0};  // Catch's assertions are not for other threads
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&intact, t] {
      std::vector<std::vector<uint8_t, HeadAllocator<uint8_t>>> mine(200);
      for (int round = 0; round < 200; ++round) {
        for (auto& h : mine) {
          if (h.size() > 900) {
            h = {};
          }
          h.reserve(HeadPool::slotSize(h.size() + 48));
          for (int k = 0; k < 30; ++k) {
            h.push_back(static_cast<uint8_t>(t));
          }
        }
      }
      const bool ok = std::all_of(mine.begin(), mine.end(), [t](const auto& h) {
        return std::all_of(h.begin(), h.end(), [t](uint8_t b) { return b == t; });
      });
      if (ok) {
        ++intact;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  CHECK(intact == 4);
}
