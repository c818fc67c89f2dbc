// The store's checkpoint file -> loadCheckpoint: a store, or "corrupt" and nothing of it.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "vigil/store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = (std::filesystem::temp_directory_path() /
                                   ("vigil-fuzz-checkpoint-" + std::to_string(::getpid())))
                                      .string();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return 0;
  }
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  auto store = vigil::makeMemStore();
  if (store->loadCheckpoint(path).isOk()) {
    // What loaded must be readable.
    store->select({*vigil::LabelMatcher::create(vigil::MatchType::kRegexMatch, "__name__", ".+")},
                  0, INT64_MAX);
  }
  std::remove(path.c_str());
  return 0;
}
