#pragma once
// Where open (head) chunks' bytes live: slots of fixed size classes (multiples of 64 bytes) in
// 64 KiB slabs mapped from the system, one set of slabs per class, not the general heap.
//
// Why: a head grows in small steps, so every series moves up through the sizes and, when its
// chunk closes, starts again at the smallest. Series scraped together do this together, and in
// the general heap the small new heads carve up the large blocks the closed heads left, which
// then cannot be joined again: the heap's footprint grows a little with every chunk cycle
// although the memory in use does not (seen in the soak test). With a slab per size class a
// small head never splits a large slot, and a slab whose slots are all free goes back to the
// system.

#include <cstddef>
#include <cstdint>
#include <new>

namespace vigil::store {

class HeadPool {
 public:
  /// Sizes served from slabs; larger requests go to operator new.
  static constexpr std::size_t kClassBytes = 64;
  static constexpr std::size_t kLargestSlot = 4096;
  static constexpr std::size_t kSlabBytes = 64 * 1024;

  /// The size a request of `n` bytes actually gets: ask for it to use the whole slot.
  static std::size_t slotSize(std::size_t n) {
    return n > kLargestSlot ? n : (n + kClassBytes - 1) / kClassBytes * kClassBytes;
  }

  static void* allocate(std::size_t n);
  static void deallocate(void* p, std::size_t n) noexcept;
  /// Bytes mapped for slabs, for the store's self-metrics and tests.
  static std::size_t mappedBytes();
};

/// std::allocator's stand-in for head chunk buffers.
template <class T>
struct HeadAllocator {
  using value_type = T;
  HeadAllocator() noexcept = default;
  template <class U>
  HeadAllocator(const HeadAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(HeadPool::allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { HeadPool::deallocate(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const HeadAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace vigil::store
