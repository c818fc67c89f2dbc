#include "vigil/thread_name.h"

#include <pthread.h>

#include <string>

namespace vigil {

void nameThisThread(std::string_view role, int index) {
  std::string name = "vigil-";
  name += role;
  if (index >= 0) {
    name += std::to_string(index);
  }
  // The kernel keeps 16 bytes with the terminating zero.
  name.resize(std::min<std::size_t>(name.size(), 15));
  pthread_setname_np(pthread_self(), name.c_str());
}

}  // namespace vigil
