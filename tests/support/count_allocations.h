#pragma once
// Counts the allocations of a test executable: count_allocations.cpp, compiled into it (and into
// no other: it replaces the global operator new), makes every operator new count itself.
#include <cstddef>

namespace vigil::test {

/// How many times operator new has been called in this process so far.
std::size_t allocationsSoFar();

}  // namespace vigil::test
