#include "head_pool.h"

#include <atomic>
#include <mutex>

#include "mapped_memory.h"

namespace vigil::store {

namespace {

// A slab's header sits in its first 64 bytes; its slots follow. Slots are carved in order
// (`carved`) and, once freed, kept on a list threaded through the free slots themselves.
struct Slab {
  Slab* prev = nullptr;  // in its class's list of slabs with a free slot
  Slab* next = nullptr;
  void* free_list = nullptr;
  uint32_t slot = 0;
  uint32_t capacity = 0;
  uint32_t used = 0;
  uint32_t carved = 0;
  bool listed = false;
};
constexpr std::size_t kSlabHeaderBytes = 64;
static_assert(sizeof(Slab) <= kSlabHeaderBytes);
constexpr std::size_t kClasses = HeadPool::kLargestSlot / HeadPool::kClassBytes;

struct SizeClass {
  std::mutex mu;
  Slab* partial = nullptr;  // slabs with a free slot; the first is used first
  std::size_t slabs = 0;
};

// Never destroyed: buffers may be freed by static destructors after this file's would run.
SizeClass* classes() {
  static auto* all = new SizeClass[kClasses];
  return all;
}

std::atomic<std::size_t> g_slab_mapped_bytes{0};

uint8_t* slotsOf(Slab* s) { return reinterpret_cast<uint8_t*>(s) + kSlabHeaderBytes; }

void link(SizeClass& c, Slab* s) {
  s->prev = nullptr;
  s->next = c.partial;
  if (c.partial != nullptr) {
    c.partial->prev = s;
  }
  c.partial = s;
  s->listed = true;
}

void unlink(SizeClass& c, Slab* s) {
  if (s->prev != nullptr) {
    s->prev->next = s->next;
  } else {
    c.partial = s->next;
  }
  if (s->next != nullptr) {
    s->next->prev = s->prev;
  }
  s->prev = s->next = nullptr;
  s->listed = false;
}

Slab* newSlab(std::size_t slot) {
  void* mem = mapAligned(HeadPool::kSlabBytes, HeadPool::kSlabBytes);
  auto* s = new (mem) Slab;
  s->slot = static_cast<uint32_t>(slot);
  s->capacity = static_cast<uint32_t>((HeadPool::kSlabBytes - kSlabHeaderBytes) / slot);
  poisonRegion(slotsOf(s), HeadPool::kSlabBytes - kSlabHeaderBytes);
  g_slab_mapped_bytes.fetch_add(HeadPool::kSlabBytes, std::memory_order_relaxed);
  return s;
}

}  // namespace

void* HeadPool::allocate(std::size_t n) {
  if (n > kLargestSlot) {
    return ::operator new(n);
  }
  const std::size_t slot = slotSize(n == 0 ? 1 : n);
  SizeClass& c = classes()[slot / kClassBytes - 1];
  std::lock_guard lock(c.mu);
  Slab* s = c.partial;
  if (s == nullptr) {
    s = newSlab(slot);
    ++c.slabs;
    link(c, s);
  }
  void* p = nullptr;
  if (s->free_list != nullptr) {
    p = s->free_list;
    unpoisonRegion(p, slot);
    s->free_list = *static_cast<void**>(p);
  } else {
    p = slotsOf(s) + std::size_t{s->carved} * slot;
    ++s->carved;
    unpoisonRegion(p, slot);
  }
  if (++s->used == s->capacity) {
    unlink(c, s);
  }
  return p;
}

void HeadPool::deallocate(void* p, std::size_t n) noexcept {
  if (p == nullptr) {
    return;
  }
  if (n > kLargestSlot) {
    ::operator delete(p);
    return;
  }
  auto* s = reinterpret_cast<Slab*>(reinterpret_cast<uintptr_t>(p) & ~(kSlabBytes - 1));
  SizeClass& c = classes()[s->slot / kClassBytes - 1];
  std::lock_guard lock(c.mu);
  *static_cast<void**>(p) = s->free_list;
  s->free_list = p;
  poisonRegion(p, s->slot);
  --s->used;
  if (!s->listed) {
    link(c, s);
  }
  if (s->used == 0) {
    if (c.slabs > 1) {
      // Empty and not the class's last: back to the system.
      unlink(c, s);
      --c.slabs;
      unmapRegion(s, kSlabBytes);
      g_slab_mapped_bytes.fetch_sub(kSlabBytes, std::memory_order_relaxed);
    } else {
      // The class's last slab stays mapped, so that a class used by one buffer at a time does
      // not map and unmap on every use, but its pages go back.
      s->free_list = nullptr;
      s->carved = 0;
      auto* after_first_page = reinterpret_cast<uint8_t*>(s) + kPageBytes;
      unpoisonRegion(after_first_page, kSlabBytes - kPageBytes);
      dropPages(after_first_page, kSlabBytes - kPageBytes);
      poisonRegion(slotsOf(s), kSlabBytes - kSlabHeaderBytes);
    }
  }
}

std::size_t HeadPool::mappedBytes() { return g_slab_mapped_bytes.load(std::memory_order_relaxed); }

}  // namespace vigil::store
