#include "mapped_memory.h"

#include <sys/mman.h>

#include <cstdint>
#include <new>

#if defined(__SANITIZE_ADDRESS__)
#define VIGIL_STORE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VIGIL_STORE_ASAN 1
#endif
#endif
#ifdef VIGIL_STORE_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace vigil::store {

void* mapAligned(std::size_t bytes, std::size_t align) {
  // Map more than asked and give back the ends.
  void* raw =
      ::mmap(nullptr, bytes + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    throw std::bad_alloc();
  }
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = roundUpTo(start, align);
  if (aligned > start) {
    ::munmap(raw, aligned - start);
  }
  const uintptr_t end = aligned + bytes;
  if (start + bytes + align > end) {
    ::munmap(reinterpret_cast<void*>(end), start + bytes + align - end);
  }
  return reinterpret_cast<void*>(aligned);
}

void unmapRegion(void* p, std::size_t bytes) {
  unpoisonRegion(p, bytes);
  ::munmap(p, bytes);
}

void dropPages(void* p, std::size_t bytes) { ::madvise(p, bytes, MADV_DONTNEED); }

#ifdef VIGIL_STORE_ASAN
void poisonRegion(void* p, std::size_t bytes) { ASAN_POISON_MEMORY_REGION(p, bytes); }
void unpoisonRegion(void* p, std::size_t bytes) { ASAN_UNPOISON_MEMORY_REGION(p, bytes); }
std::size_t redZoneBytes() { return 8; }
#else
void poisonRegion(void*, std::size_t) {}
void unpoisonRegion(void*, std::size_t) {}
std::size_t redZoneBytes() { return 0; }
#endif

}  // namespace vigil::store
