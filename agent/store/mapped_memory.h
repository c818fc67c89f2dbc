#pragma once
// Memory the store maps from the system itself rather than taking from malloc (see
// chunk_arena.h and head_pool.h for why), and AddressSanitizer's view of it.

#include <cstddef>

namespace vigil::store {

/// A private anonymous mapping of `bytes` (a multiple of the page size) aligned to `align` (a
/// power of two, at least a page). Throws std::bad_alloc when the system refuses.
void* mapAligned(std::size_t bytes, std::size_t align);
/// Gives a mapping back, first marking it addressable again for AddressSanitizer so that the
/// next mapping at this address starts clean.
void unmapRegion(void* p, std::size_t bytes);
/// Tells the system the pages of [p, p + bytes) may be dropped (they read back as zeros).
void dropPages(void* p, std::size_t bytes);

/// Under AddressSanitizer, marks memory that holds no live object, so that reading into it is
/// caught although malloc did not place the object; no-ops otherwise.
void poisonRegion(void* p, std::size_t bytes);
void unpoisonRegion(void* p, std::size_t bytes);
/// Bytes between two objects that stay poisoned under AddressSanitizer (0 otherwise).
std::size_t redZoneBytes();

constexpr std::size_t kPageBytes = 4096;
inline std::size_t roundUpTo(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

}  // namespace vigil::store
