#pragma once
// Names the calling thread, as `top -H`, `ps -L`, perf and gdb show it, so that an operator
// can tell which of vigil's loops is using the CPU (Netdata names its threads the same way).

#include <string_view>

namespace vigil {

/// Names the calling thread "vigil-" + `role`, followed by `index` when it is given, cut to
/// the kernel's 15 characters (a role and index of up to nine keep the whole name). Best
/// effort: a name the kernel refuses leaves the thread as it was.
void nameThisThread(std::string_view role, int index = -1);

}  // namespace vigil
